"""APScheduler 3, for the maintenance jobs' calendar, used so that a stepping wall clock cannot hurt it.

A Jetson without an RTC battery boots at a stale time and NTP then jumps
it, maybe by months. After a backward step a naive scheduler sleeps until
the old schedule comes round again (a hang). The sampling tick and the tasks
are not here but in the daemon's own loop on the monotonic clock
(``ishowd/mainloop.py``); the jobs are:

- ``SteadyScheduler``: each time it wakes, compares the wall clock with the
  monotonic clock, and after a backward step re-anchors every job to its
  next fire time from the new now. It sleeps until the next job is due (or
  it is woken: the main loop wakes it when it sees a step), never polling: a
  sleep is a wait on the monotonic clock reckoned right after a check, so a
  step cannot stretch it.
- ``CrontabTrigger``: the maintenance jobs' calendar, with cron's meaning
  and daylight saving time handled (``jobs/cron.py``); a slot is never fired
  twice, also when the clock steps back over it, and after a step forward
  the slot missed runs once (the scheduler coalesces) before the next.
"""
from __future__ import annotations

import importlib
import logging
import sys
import time
import types
from collections.abc import Mapping
from datetime import datetime
from threading import TIMEOUT_MAX
from typing import Callable


class _Deferred(types.ModuleType):
    """Stands in for a module APScheduler imports for a part of it the daemon never uses: an
    attribute asked of it later is the real module's, imported then."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(importlib.import_module(self.__name__), name)


def _stand_ins() -> dict:
    """What APScheduler 3 imports that the daemon does not use, and what stands in for it during
    that import (the memory each costs the idle daemon, measured in the running daemon):

    - asyncio (1.5 MB with what it imports), before Python 3.14 for ``iscoroutinefunction`` alone.
      The stand-in answers as asyncio's function does: without asyncio loaded, no function can
      carry asyncio's coroutine marker, so ``inspect``'s answer is asyncio's; once asyncio is
      loaded for real, it asks asyncio.
    - importlib.metadata (1 MB: zipfile, csv, email's header parsing), for APScheduler's own
      version and its plugin tables (the names ``add_job(trigger="cron")`` and the like resolve),
      both read while it is imported. The daemon hands it objects, never names. The stand-in finds
      nothing; ``_defer_metadata`` then makes both read the real importlib.metadata when first
      asked, so they answer as they would have.
    - multiprocessing and concurrent.futures.process (0.8 MB, pickle among them), for its
      process-pool executor; the daemon runs its jobs in a thread pool (``JobPool``). An attribute
      of multiprocessing asked later (the process pool's start) imports the real one.
      ``BrokenProcessPool`` is only named in the process pool's ``except``: a class of the same
      standing (a broken executor) stands in, so that pool, were it used here, would report a
      broken pool instead of replacing it.
    """
    import concurrent.futures
    import inspect

    def iscoroutinefunction(func) -> bool:
        real = sys.modules.get("asyncio")
        if real is not None and real is not asyncio:
            return real.iscoroutinefunction(func)
        return inspect.iscoroutinefunction(func)

    asyncio = types.ModuleType("asyncio", "stands in for asyncio while APScheduler is imported")
    asyncio.iscoroutinefunction = iscoroutinefunction
    process = types.ModuleType("concurrent.futures.process", "stands in while APScheduler is imported")
    process.BrokenProcessPool = type("BrokenProcessPool", (concurrent.futures.BrokenExecutor,),
                                     {"__module__": process.__name__})
    metadata = types.ModuleType("importlib.metadata", "stands in while APScheduler is imported")
    metadata.PackageNotFoundError = type("PackageNotFoundError", (ModuleNotFoundError,), {})
    metadata.version = _not_found(metadata.PackageNotFoundError)
    metadata.entry_points = lambda **params: ()
    out = {"concurrent.futures.process": process, "multiprocessing": _Deferred("multiprocessing"),
           "importlib.metadata": metadata}
    if sys.version_info < (3, 14):
        out["asyncio"] = asyncio
    return out


def _not_found(error: type):
    def version(name: str) -> str:
        raise error(name)
    return version


class _Plugins(Mapping):
    """One of APScheduler's plugin tables (name: entry point), read from importlib.metadata when
    first asked."""

    def __init__(self, group: str):
        self.group, self._table = group, None

    def _read(self) -> dict:
        if self._table is None:
            from importlib.metadata import entry_points
            self._table = {ep.name: ep for ep in entry_points(group=self.group)}
        return self._table

    def __getitem__(self, name):
        return self._read()[name]

    def __iter__(self):
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())


def _version_attribute(name: str):
    """APScheduler's ``version``, ``__version__``, ``version_info`` and ``release``, from its
    distribution's metadata, as its ``__init__`` reckons them."""
    if name not in ("version", "__version__", "version_info", "release"):
        raise AttributeError(f"module 'apscheduler' has no attribute {name!r}")
    from importlib import metadata
    try:
        release = metadata.version("APScheduler").split("-")[0]
    except metadata.PackageNotFoundError:
        release = "3.5.0"
    info = tuple(int(x) if x.isdigit() else x for x in release.split("."))
    return {"release": release, "version_info": info}.get(name, ".".join(str(x) for x in info[:3]))


def _defer_metadata() -> None:
    """After an import under the importlib.metadata stand-in: what APScheduler read from it is
    read from the real module when first asked (module ``__getattr__``, lazy plugin tables)."""
    import apscheduler
    from apscheduler.schedulers.base import BaseScheduler
    tables = ("_trigger_plugins", "_executor_plugins", "_jobstore_plugins")
    if not all(isinstance(vars(BaseScheduler).get(t), dict) for t in tables):
        raise AttributeError("APScheduler's plugin tables are not where they were")
    for table, group in zip(tables, ("apscheduler.triggers", "apscheduler.executors", "apscheduler.jobstores")):
        setattr(BaseScheduler, table, _Plugins(group))
    for name in ("version", "__version__", "version_info", "release"):
        vars(apscheduler).pop(name, None)
    apscheduler.__getattr__ = _version_attribute


def _import_apscheduler_lean() -> None:
    """Import APScheduler with ``_stand_ins()`` in ``sys.modules`` for the modules it would bring
    and the daemon does not use. They are there during that import only: any later import of
    those modules gets the real ones. One already imported for real is left as it is; should an
    APScheduler release want more of them at import, it is imported again the ordinary way."""
    if "apscheduler" in sys.modules:
        return
    placed = {name: mod for name, mod in _stand_ins().items() if name not in sys.modules}
    sys.modules.update(placed)
    try:
        import apscheduler.executors.pool  # noqa: F401
        import apscheduler.schedulers.blocking  # noqa: F401
        import apscheduler.util  # noqa: F401
        if "importlib.metadata" in placed:
            _defer_metadata()
    except (ImportError, AttributeError):
        for name in [n for n in sys.modules if n == "apscheduler" or n.startswith("apscheduler.")]:
            del sys.modules[name]
    finally:
        for name, mod in placed.items():
            if sys.modules.get(name) is mod:
                del sys.modules[name]


_import_apscheduler_lean()

from apscheduler.executors.pool import ThreadPoolExecutor as JobPool  # noqa: E402
from apscheduler.schedulers.blocking import BlockingScheduler  # noqa: E402
from apscheduler.triggers.base import BaseTrigger  # noqa: E402
from apscheduler.triggers.cron import CronTrigger  # noqa: E402

from .mainloop import STEP_TOLERANCE  # noqa: E402

__all__ = ["CronTrigger", "CrontabTrigger", "JobPool", "SteadyScheduler"]

log = logging.getLogger("ishowd.schedule")


class CrontabTrigger(BaseTrigger):
    """Fire times of a ``jobs.cron.Crontab`` in ``tz`` (None: the host's local time)."""

    def __init__(self, crontab, tz=None, last_slot: float | None = None):
        self.crontab, self.tz = crontab, tz
        self.last_slot = last_slot  # epoch seconds of the newest slot fired: never handed out again

    def fired(self, slot: float) -> None:
        self.last_slot = slot if self.last_slot is None else max(self.last_slot, slot)

    def get_next_fire_time(self, previous_fire_time, now: datetime):
        after = now.timestamp()
        if previous_fire_time is not None:
            after = max(after, previous_fire_time.timestamp())
        if self.last_slot is not None:
            after = max(after, self.last_slot)
        fire = self.crontab.next_after(after, self.tz)
        return datetime.fromtimestamp(fire, now.tzinfo)

    def __str__(self) -> str:
        return f"cron {self.crontab.text!r}"


class SteadyScheduler(BlockingScheduler):
    """Its ``start()`` runs the calendar in the calling thread until ``request_stop()``."""

    def __init__(self, *args, wall: Callable[[], float] = time.time, mono: Callable[[], float] = time.monotonic,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self._wall, self._mono = wall, mono
        self._offset: float | None = None
        self._stop_requested = False
        self.steps = 0

    def request_stop(self) -> None:
        """Its loop shuts down after the jobs in flight. Not from a signal handler: waking takes a
        lock the interrupted thread may hold."""
        self._stop_requested = True
        self.wakeup()

    def _check_clock(self) -> bool:
        """Re-anchor the jobs if the wall clock stepped since the last check; True if it had."""
        offset = self._wall() - self._mono()
        previous, self._offset = self._offset, offset
        if previous is None or abs(offset - previous) <= STEP_TOLERANCE:
            return False
        step = offset - previous
        self.steps += 1
        log.warning("wall clock stepped by %+.0f s; re-anchoring the schedule", step)
        now = datetime.now(self.timezone)
        for job in self.get_jobs():
            if step < 0:
                job.modify(next_run_time=job.trigger.get_next_fire_time(None, now))
        return True

    def _process_jobs(self):
        if self._stop_requested:
            self._stop_requested = False
            self.shutdown(wait=True)
            return None
        self._check_clock()
        wait = super()._process_jobs()
        if self._check_clock():
            # stepped while the jobs were looked at or ran: the wait was reckoned on both sides of
            # the step (after a step back it would sleep until the old schedule came round)
            return 0
        return TIMEOUT_MAX if wait is None else min(wait, TIMEOUT_MAX)
