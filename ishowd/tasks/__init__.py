"""Tasks: work the daemon schedules besides the sampling tick.

Log ingestion, health probes and alert evaluation are tasks. Like
collectors, each is a module in this package that registers itself (and a
line in ``ishowd/catalog.py``); the daemon schedules every registered task
that ``setup()`` accepts.

    @register
    class LogIngest(Task):
        name = "log-ingest"
        order = 10                          # lower runs first in `run --once`
        def interval(self): return self.config.rtf.interval   # seconds, or None
        def run(self, now): ...

A task runs between ticks, with at most one instance of itself at a time: in
the main loop's thread when ``quick()`` says this run is short (as the
tick does: no hand-off to another thread to pay for), else in the task pool,
so that a long run holds up no tick. Its interval's slots lie on the sampling
tick's grid, so a task due with a tick shares its wake-up. ``after_tick = True`` tasks run
right after each sampling tick instead of on their own interval (alert
evaluation). ``cron()`` may return APScheduler cron fields (a dict such as
``{"hour": 3, "minute": 0}``) for calendar jobs. ``ishowd run --once`` runs
every task once, in ``order``, after the single tick, then lets each ``settle()``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ..parts import Part, Registry

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Config
    from ..store.writer import Store


class Task(Part):
    kind = "task"
    order: int = 50
    after_tick: bool = False

    def __init__(self, config: "Config", store: "Store"):
        self.config = config
        self.store = store

    def interval(self) -> Optional[float]:
        """Seconds between runs, or None (then ``cron()`` or ``after_tick`` decides)."""
        return None

    def cron(self) -> Optional[dict]:
        return None

    def quick(self) -> bool:
        """Whether a run now would be short (a few milliseconds), so it may run in the main loop's
        thread between two ticks. Asked just before each run; when unsure, say False."""
        return False

    def run(self, now: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def settle(self) -> None:
        """``run --once`` only, before ``close``: finish what this run queued (a stopping
        daemon does not wait: ``close`` bounds it)."""


REGISTRY: Registry["Task"] = Registry("task")
register = REGISTRY.register
