"""The daemon's main loop: the sampling tick and the periodic tasks on one grid of the monotonic clock.

APScheduler keeps the maintenance jobs (``ishowd/schedule.py``: their calendar
needs it), in a thread that sleeps until the next one is due. The tick and the
tasks are not on it: on an idle machine APScheduler's bookkeeping at every
wake-up (the due jobs, fire times in wall time and their time zones, events,
the job store) cost as much CPU as the tick itself (``docs/performance.md``).

- **One grid.** Run ``k`` of an entry every ``s`` seconds is due at
  ``origin + k * s``: entries whose periods agree (a 5 s task, a 10 s tick)
  fall due at one instant and run in one wake-up, in their ``order``.
  Entries due within ``COALESCE`` of each other share it too.
- **Missed slots are skipped**, never replayed, and no slot runs twice: a run
  that outlasts its period takes the slots it covered with it.
- **The monotonic clock only**: a wall clock step can neither flood nor stall
  the loop. Each wake-up compares the wall clock with it and reports a step
  (``on_step``), for the calendar's sake.
- **Sleeping is a** ``select()`` **on the signals' wake-up pipe**
  (``signal.set_wakeup_fd``): a signal wakes the loop at once, in the main
  thread, where ``on_signal`` acts on it between two runs. Between its runs
  the loop makes no system call and wakes for nothing.
"""
from __future__ import annotations

import logging
import math
import os
import select
import signal
import time
from typing import Callable, Iterable, Optional

log = logging.getLogger("ishowd")

COALESCE = 0.002        # entries due within this of each other run in the same wake-up
STEP_TOLERANCE = 2.0    # a wall/monotonic disagreement larger than this is a step, not NTP slewing


def _noted_by_the_pipe(_signum, _frame) -> None:
    """The Python-level handler: one must be set for the wake-up pipe to hear the signal. It does
    nothing, for it interrupts the main thread anywhere; ``on_signal`` acts between two runs."""


class _Entry:
    __slots__ = ("name", "seconds", "run", "order", "slot", "due")

    def __init__(self, name: str, seconds: float, run: Callable[[], None], order: int):
        self.name, self.seconds, self.run, self.order = name, float(seconds), run, order
        self.slot: Optional[int] = None     # the slot it runs next
        self.due = math.inf                 # that slot's monotonic time


class MainLoop:
    def __init__(self, signals: Iterable[int], on_signal: Callable[[list[int]], None],
                 on_step: Optional[Callable[[float], None]] = None,
                 mono: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time):
        self.signals = frozenset(signals)
        self.on_signal, self.on_step = on_signal, on_step
        self.mono, self.wall = mono, wall
        self.origin: Optional[float] = None    # the grid: slot k of every entry is at origin + k * seconds
        self.wakes = 0
        self._entries: dict[str, _Entry] = {}
        self._offset: Optional[float] = None
        self._stopping = False
        self._pipe: Optional[tuple[int, int]] = None

    # --- what runs ----------------------------------------------------------------------

    def every(self, name: str, seconds: float, run: Callable[[], None], order: int = 0) -> None:
        """Run ``run()`` every ``seconds`` on the grid, from its first slot not yet past. Added again
        under the same name (a reload), it replaces the entry; with the same period it keeps its
        place, so the slot it just ran does not come round again."""
        old = self._entries.get(name)
        entry = self._entries[name] = _Entry(name, seconds, run, order)
        if old is not None and old.seconds == entry.seconds:
            entry.slot, entry.due = old.slot, old.due
        elif self.origin is not None:
            self._lay(entry, self.mono())

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def regrid(self, origin: float) -> None:
        """Lay the grid from ``origin`` (a monotonic time): every entry runs next at its first slot
        from there not yet past."""
        self.origin = origin
        now = self.mono()
        for entry in self._entries.values():
            entry.slot = None
            self._lay(entry, now)

    def _lay(self, entry: _Entry, now: float) -> None:
        """The entry's next slot: the first one not past (within ``COALESCE``), after the one it ran."""
        s = entry.seconds
        slot = max(0, math.ceil((now - COALESCE - self.origin) / s))
        if entry.slot is not None:
            slot = max(slot, entry.slot + 1)
        entry.slot, entry.due = slot, self.origin + slot * s

    # --- running ------------------------------------------------------------------------

    def stop(self) -> None:
        """End ``run`` after the run in flight (from any thread, or a run)."""
        self._stopping = True
        if self._pipe is not None:
            try:
                os.write(self._pipe[1], b"\0")     # wakes the select; 0 is no signal
            except OSError:
                pass

    def run(self) -> None:
        """Run the entries until ``stop()``. In the main thread: it takes the signals' wake-up fd."""
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)   # the C-level handler must never block on a full pipe
        os.set_blocking(read_end, False)
        self._pipe = (read_end, write_end)
        saved = {signum: signal.signal(signum, _noted_by_the_pipe) for signum in self.signals}
        previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        try:
            now = self.mono()
            if self.origin is None:
                self.origin = now
            for entry in self._entries.values():
                if entry.slot is None:
                    self._lay(entry, now)
            while not self._stopping:
                self._wake()
                if self._stopping:
                    break
                due = min((e.due for e in self._entries.values()), default=math.inf)
                timeout = None if due == math.inf else max(0.0, due - self.mono() + COALESCE)
                ready, _, _ = select.select([read_end], [], [], timeout)   # a signal: retried (PEP 475), readable
                if ready:
                    self._read_signals(read_end)
        finally:
            signal.set_wakeup_fd(previous_fd)
            for signum, handler in saved.items():
                signal.signal(signum, handler)
            self._pipe = None
            os.close(read_end)
            os.close(write_end)

    def _wake(self) -> None:
        """Run what is due, in order; each entry then waits for its next slot."""
        self.wakes += 1
        self._check_clock()
        now = self.mono()
        due = sorted((e for e in self._entries.values() if e.due <= now + COALESCE),
                     key=lambda e: (e.order, e.name))
        for entry in due:
            if self._stopping:
                return
            if self._entries.get(entry.name) is not entry:
                continue                   # replaced or removed by a run before it (a reload)
            try:
                entry.run()
            except Exception:  # a bug in one run must not end the loop; the next slot runs again
                log.exception("%s failed", entry.name)
            now_entry = self._entries.get(entry.name)   # itself, or what a reload in the run put there
            if now_entry is not None and now_entry.slot is not None and now_entry.slot <= entry.slot:
                self._lay(now_entry, self.mono())

    def _read_signals(self, fd: int) -> None:
        try:
            got = os.read(fd, 512)
        except BlockingIOError:
            return
        noted = [signum for signum in got if signum in self.signals]
        if noted:
            self.on_signal(noted)

    def _check_clock(self) -> None:
        offset = self.wall() - self.mono()
        previous, self._offset = self._offset, offset
        if previous is not None and abs(offset - previous) > STEP_TOLERANCE and self.on_step is not None:
            self.on_step(offset - previous)
