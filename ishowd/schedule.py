"""APScheduler 3, used so that a stepping wall clock cannot hurt the sampler.

A Jetson without an RTC battery boots at a stale time and NTP then jumps
it, maybe by months. Used naively, APScheduler 3's interval trigger then
computes every missed run time between the old and the new time (a flood
of work, or a long stall), and after a backward step it sleeps until the
old schedule comes round again (a hang). Two pieces prevent that:

- ``MonotonicInterval``: fire times come from a grid on the monotonic clock,
  translated to wall time only when asked. Missed slots are skipped, never
  replayed; slots never drift; a slot already fired is never fired again.
- ``SteadyScheduler``: each time it wakes, compares the wall clock with the
  monotonic clock, and when it has stepped re-anchors every job: interval
  jobs to their next monotonic slot, calendar (cron) jobs, after a backward
  step, to their next fire time from the new now. It sleeps until the next
  job is due (or it is woken), never polling: a sleep is a wait on the
  monotonic clock reckoned right after a check, so a step cannot stretch or
  cut it, and the next wake-up, which sees the step, is the one that would
  have run a job anyway.
- ``CrontabTrigger``: the maintenance jobs' calendar, with cron's meaning
  and daylight saving time handled (``jobs/cron.py``); a slot is never fired
  twice, also when the clock steps back over it, and after a step forward
  the slot missed runs once (the scheduler coalesces) before the next.
"""
from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timedelta
from threading import TIMEOUT_MAX
from typing import Callable

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger

log = logging.getLogger("ishowd.schedule")

# A wall/monotonic disagreement larger than this is a step, not NTP slewing.
STEP_TOLERANCE = 2.0


class MonotonicInterval(BaseTrigger):
    """Every ``seconds`` on the monotonic clock, the first run ``first_delay`` (default: one interval)
    after the scheduler first asks for it."""

    def __init__(self, seconds: float, mono: Callable[[], float] = time.monotonic, first_delay: float | None = None):
        self.seconds = float(seconds)
        self.mono = mono
        self.first_delay = self.seconds if first_delay is None else float(first_delay)
        # slot k is due at anchor + k * seconds. Set by the first question, not here: a grid laid
        # at construction put slot 1 of first_delay=0 in the past by the time the scheduler asked
        # (it starts later), so slot 1 counted as missed and the first run came a whole interval late.
        self.anchor: float | None = None
        self.last_slot = 0
        # fire time handed out -> its slot. APScheduler asks for the next fire time
        # right after submitting a run, before the run records its slot: this is how
        # the answer stays past that slot even if the scheduler woke a hair early.
        self._issued: dict[datetime, int] = {}

    def _grid(self, now: float) -> float:
        if self.anchor is None:
            self.anchor = now - self.seconds + self.first_delay
        return self.anchor

    def slot_now(self) -> int:
        """The slot a run starting now belongs to (record it with ``fired``)."""
        now = self.mono()
        return round((now - self._grid(now)) / self.seconds)

    def fired(self, slot: int) -> None:
        self.last_slot = max(self.last_slot, slot)

    def next_slot(self, after: int = 0, now: float | None = None) -> int:
        """The first slot not yet due, and past both ``after`` and the last one fired."""
        now = self.mono() if now is None else now
        due = math.ceil((now - self._grid(now)) / self.seconds - 1e-9)
        return max(due, self.last_slot + 1, after + 1)

    def get_next_fire_time(self, previous_fire_time, now: datetime):
        after = self._issued.get(previous_fire_time, 0) if previous_fire_time is not None else 0
        mono = self.mono()  # one reading for both: slot 1 of first_delay=0 is due exactly now
        slot = self.next_slot(after, mono)
        fire = now + timedelta(seconds=max(self.anchor + slot * self.seconds - mono, 0.0))
        self._issued[fire] = slot
        while len(self._issued) > 8:
            del self._issued[next(iter(self._issued))]
        return fire

    def __str__(self) -> str:
        return f"every {self.seconds:g}s (monotonic)"


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
    """``on_wake`` runs in the scheduler's own thread each time it wakes, before the jobs due: work
    that must not run in a signal handler goes there (``wakeup()`` from another thread brings it
    on). ``watch``, when given, caps each sleep at that many seconds."""

    def __init__(self, *args, watch: float | None = None, wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic, on_wake: Callable[[], None] | None = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self._watch = watch
        self._wall, self._mono = wall, mono
        self._on_wake = on_wake
        self._offset: float | None = None
        self._stop_requested = False
        self.steps = 0

    def request_stop(self) -> None:
        """The main loop shuts down after the jobs in flight. Not from a signal handler: waking
        takes a lock the interrupted thread may hold (a handler leaves a note for ``on_wake``)."""
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
            if isinstance(job.trigger, MonotonicInterval) or step < 0:
                job.modify(next_run_time=job.trigger.get_next_fire_time(None, now))
        return True

    def _process_jobs(self):
        if self._on_wake is not None:
            self._on_wake()
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
        return min(TIMEOUT_MAX if wait is None else wait, TIMEOUT_MAX if self._watch is None else self._watch)
