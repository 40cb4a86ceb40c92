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

import logging
import time
from datetime import datetime
from threading import TIMEOUT_MAX
from typing import Callable

from .lean_apscheduler import import_apscheduler

import_apscheduler()   # before the first import of APScheduler: see lean_apscheduler.py

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
