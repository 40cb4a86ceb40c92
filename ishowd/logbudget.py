"""A budget for log lines of one kind: a storm is summarised, not poured into the journal.

Fifty series flapping every tick made about 75 warnings a second (alert
changes and hook failures); nobody reads that, and it pushes everything
else out of the journal. Each kind gets ``burst`` lines per ``period``;
beyond that lines are counted, and one summary line says how many were held
back (``ishowctl alerts --all`` still lists every event and hook run).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable


class LogBudget:
    def __init__(self, logger: logging.Logger, what: str, *, burst: int = 20, period: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.logger, self.what, self.burst, self.period, self.clock = logger, what, burst, period, clock
        self._lock = threading.Lock()
        self._start: float | None = None  # the period starts with its first line
        self._used = 0
        self._held = 0

    def log(self, level: int, msg: str, *args) -> None:
        with self._lock:
            self._roll()
            if self._used < self.burst:
                self._used += 1
                self.logger.log(level, msg, *args)
            else:
                self._held += 1

    def flush(self) -> None:
        """Say what was held back once its period is over (called on each evaluation, so the
        summary comes even when the storm has stopped)."""
        with self._lock:
            self._roll()

    def _roll(self) -> None:
        now = self.clock()
        if self._start is None:
            self._start = now
        if now - self._start < self.period:
            return
        if self._held:
            self.logger.warning("%d more %s in the last %.0fs were not logged one by one "
                                "(`ishowctl alerts --all` lists them)", self._held, self.what, now - self._start)
        self._start, self._used, self._held = now, 0, 0
