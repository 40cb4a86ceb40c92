"""The maintenance jobs on APScheduler (``schedule.SteadyScheduler``, in a thread of its own): their
calendar, the runs missed while it was down, and the calendar a reload (SIGHUP) brings.

Jobs run in their own small pool (``executor="jobs"``), off the main loop that runs the sampling
tick and the tasks, so a job running for an hour delays no tick.
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
    _schedule(sched, runner)
    now = datetime.now(timezone.utc)
    for name, slot in runner.missed():
        log.info("job %s: its run of %s was missed while ishowd was down; running it now", name,
                 datetime.fromtimestamp(slot).astimezone().isoformat(timespec="minutes"))
        sched.add_job(runner.run, args=(name,), kwargs={"trigger": "catch-up", "slot": slot},
                      id="catch-up:" + name, name=name, executor=EXECUTOR, next_run_time=now,
                      misfire_grace_time=None)


def reschedule(sched, runner: JobRunner, config) -> None:
    """SIGHUP: ``config``'s jobs on the calendar in place of the running config's. The runner stays,
    and with it the history, the slots already run and the runs in flight (each finishes as it
    began). No catch-up: ishowd was not down."""
    from .cron import Crontab
    from .runner import set_up, timezone as timezone_of
    jobs, unavailable = set_up(config)
    for job in sched.get_jobs():
        if job.id.startswith("job:"):
            job.remove()
    runner.config, runner.tz = config, timezone_of(config)
    runner.crontabs = {name: Crontab(job.settings.schedule) for name, job in jobs.items()}
    runner.jobs, runner.unavailable = jobs, dict(unavailable)
    _schedule(sched, runner)


def _schedule(sched, runner: JobRunner) -> None:
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
