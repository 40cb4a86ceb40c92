"""The maintenance jobs on the daemon's scheduler: their calendar, and the runs missed while it was down.

Jobs run in their own small pool (``executor="jobs"``), never the one the
sampling tick and the tasks use, so a job running for an hour delays no tick.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from ..schedule import CrontabTrigger
from .runner import JobRunner

log = logging.getLogger("ishowd.jobs")

EXECUTOR = "jobs"
WORKERS = 2


def add_jobs(sched, runner: JobRunner) -> None:
    """Schedule every enabled job, and once now each one whose slot passed while ishowd was down."""
    for name in runner.enabled():
        trigger = CrontabTrigger(runner.crontabs[name], runner.tz, runner.last_slot.get(name))

        def fire(name=name, trigger=trigger) -> None:
            slot = runner.crontabs[name].last_at_or_before(time.time(), runner.tz)
            if slot is not None:
                trigger.fired(slot)
            runner.run(name, trigger="schedule", slot=slot)

        # coalesce: after the clock stepped forward past slots, the one missed runs once, then the
        # next; no misfire grace, so a run late behind another job is late, not lost
        sched.add_job(fire, trigger, id="job:" + name, name=name, executor=EXECUTOR, coalesce=True,
                      max_instances=1, misfire_grace_time=None)
    now = datetime.now(timezone.utc)
    for name, slot in runner.missed():
        log.info("job %s: its run of %s was missed while ishowd was down; running it now", name,
                 datetime.fromtimestamp(slot).astimezone().isoformat(timespec="minutes"))
        sched.add_job(runner.run, args=(name,), kwargs={"trigger": "catch-up", "slot": slot},
                      id="catch-up:" + name, name=name, executor=EXECUTOR, next_run_time=now,
                      misfire_grace_time=None)
