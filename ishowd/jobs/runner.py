"""Running maintenance jobs: one at a time per job and per thing touched, bounded, recorded.

``JobRunner.run(name)`` is the one way a job runs, scheduled or asked for:

- it waits until neither this job nor a job touching the same thing
  (``Job.touches``) is running (a scheduled run of a job already running is
  skipped instead: a slot is not worth two runs);
- records the run as ``running`` in ``job_runs`` (a row still ``running`` at
  the next start was cut short: ``interrupted``), then runs the job in its own
  thread with a ``JobContext``; at the job's ``timeout`` the context's cancel is
  set (children's groups ended, ``ctx.check()`` raises) and the run is recorded
  ``timeout``;
- completes the row with status, detail and result, and keeps the last run
  of each job in memory for the per-tick metrics (``samples``).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable, NamedTuple, Optional

from ..metrics import Sample
from ..process import Cancel
from ..store import sql
from ..timefmt import to_us
from . import JOB_DURATION, JOB_LAST_RUN, JOB_OVERDUE, JOB_SUCCESS, Job, JobContext, Outcome, Stopped
from .cron import Crontab

log = logging.getLogger("ishowd.jobs")

# After its timeout a run's thread gets this long to notice (ctx.check(), its children ended)
# before the run is recorded as timed out without it.
STOP_GRACE = 10.0
EMIT_EVERY = 60.0


class Run(NamedTuple):
    id: int
    job: str
    started: float            # epoch seconds
    finished: Optional[float]
    status: str
    detail: str
    result: dict
    trigger: str

    @classmethod
    def from_row(cls, row) -> "Run":
        rid, job, started, finished, status, detail, result, trigger = row
        try:
            parsed = json.loads(result) if result else {}
        except ValueError:
            parsed = {}
        return cls(rid, job, started / 1e6, None if finished is None else finished / 1e6, status, detail,
                   parsed, trigger)

    def as_json(self) -> dict:
        from ..timefmt import iso
        return {"job": self.job, "started": iso(self.started),
                "finished": None if self.finished is None else iso(self.finished),
                "status": self.status, "detail": self.detail, "result": self.result}


def set_up(config) -> tuple[dict[str, Job], dict[str, str]]:
    """Every registered job, and why each one that does not apply here does not (``setup()``)."""
    from .. import catalog
    jobs, unavailable = {}, {}
    for name, cls in sorted(catalog.jobs().items()):
        job = jobs[name] = cls(config)
        try:
            reason = job.setup()
        except Exception as exc:  # a job that cannot start costs only itself
            reason = f"setup failed: {exc}"
        if reason:
            unavailable[name] = reason
    return jobs, unavailable


def timezone(config):
    """``[jobs] timezone`` as a tzinfo, or None for the host's local time."""
    name = config.jobs.timezone
    if not name:
        return None
    from zoneinfo import ZoneInfo
    return ZoneInfo(name)


class JobRunner:
    def __init__(self, config, store, jobs: dict[str, Job], unavailable: Optional[dict[str, str]] = None, *,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.store = store
        self.jobs = jobs
        self.unavailable = dict(unavailable or {})   # name -> why it does not apply on this host
        self.clock = clock
        self.tz = timezone(config)
        self.crontabs = {name: Crontab(job.settings.schedule) for name, job in jobs.items()}
        self._cond = threading.Condition()
        self._busy: set[str] = set()          # job names and things touched, while running
        self._active: dict[Cancel, threading.Event] = {}  # runs in flight: their cancel, and "look now"
        self.stopping = False
        self.last: dict[str, Run] = {}
        self._emitted_at: Optional[float] = None   # when the metrics last went into a tick
        self.last_slot: dict[str, float] = {}
        if store is not None:
            with store.transaction() as conn:
                n = conn.execute(sql.JOB_RUNS_INTERRUPTED, {
                    "detail": "interrupted: ishowd stopped while it ran (crash, kill or power loss)"}).rowcount
                if n:
                    log.warning("%d job run(s) were cut short by the last stop; recorded as failed", n)
                self.last = {r.job: r for r in map(Run.from_row, conn.execute(sql.JOB_RUNS_LAST))}
                self.last_slot = {job: slot / 1e6 for job, slot in conn.execute(sql.JOB_LAST_SLOTS)
                                  if slot is not None}
                since = conn.execute(sql.META_GET, {"key": "jobs_since"}).fetchone()
                if since is None:
                    conn.execute(sql.META_PUT, {"key": "jobs_since", "value": str(int(self.clock()))})
            self.since = float(since[0]) if since else self.clock()
        else:
            self.since = self.clock()

    # --- the schedule ----------------------------------------------------------------

    def enabled(self) -> list[str]:
        """The jobs the schedule runs: enabled, and applying on this host."""
        return sorted(n for n, j in self.jobs.items() if j.settings.enabled and n not in self.unavailable)

    def next_run(self, name: str, now: Optional[float] = None) -> float:
        now = self.clock() if now is None else now
        return self.crontabs[name].next_after(max(now, self.last_slot.get(name, now)), self.tz)

    def missed(self, now: Optional[float] = None) -> list[tuple[str, float]]:
        """Enabled jobs whose latest slot passed while no run happened since (ishowd was down):
        each runs once at start, as systemd timers' Persistent= and anacron do."""
        now = self.clock() if now is None else now
        out = []
        for name in self.enabled():
            last = self.last.get(name)
            slot = self.crontabs[name].last_at_or_before(now, self.tz)
            if last is None or slot is None:
                continue  # never run here: the first run comes at its time
            if last.started < slot and self.last_slot.get(name, 0) < slot:
                out.append((name, slot))
        return out

    # --- running ------------------------------------------------------------------------

    def _claims(self, job: Job) -> set[str]:
        return {"job:" + job.name} | set(job.touches)

    def run(self, name: str, *, trigger: str = "operator", slot: Optional[float] = None,
            progress: Optional[Callable[[str], None]] = None) -> Optional[Run]:
        """Run job ``name`` now and return its recorded run (None: a scheduled run found the job
        already running and gave its slot up)."""
        job = self.jobs[name]
        claims = self._claims(job)
        with self._cond:
            if trigger != "operator" and "job:" + name in self._busy:
                log.info("job %s: still running, this slot (%s) is skipped", name, trigger)
                return None
            while claims & self._busy:
                others = sorted(c.removeprefix("job:") for c in claims & self._busy)
                if progress is not None:
                    progress(f"waiting for {', '.join(others)} to finish")
                self._cond.wait()
            self._busy |= claims
        try:
            return self._run_claimed(job, trigger, slot, progress)
        finally:
            with self._cond:
                self._busy -= claims
                self._cond.notify_all()

    def _run_claimed(self, job: Job, trigger: str, slot: Optional[float], progress) -> Run:
        started = self.clock()
        timeout = job.settings.timeout
        rid = 0
        if self.store is not None:
            with self.store.transaction() as conn:
                rid = conn.execute(sql.JOB_RUN_START, {"job": job.name, "started": to_us(started),
                                                       "trigger": trigger,
                                                       "slot": None if slot is None else to_us(slot)}).lastrowid
        if slot is not None:
            self.last_slot[job.name] = max(slot, self.last_slot.get(job.name, slot))
        log.info("job %s: started (%s)", job.name, trigger)
        cancel, wake = Cancel(), threading.Event()
        with self._cond:
            self._active[cancel] = wake
            if self.stopping:
                cancel.set()
        from .. import catalog
        ctx = JobContext(self.config, timeout=timeout, cancel=cancel, store=self.store, progress=progress,
                         now=started, by=trigger, collectors=catalog.collectors)
        ctx.run_id = rid or None
        box: list[Outcome] = []

        def body() -> None:
            try:
                box.append(self._outcome(job, ctx))
            finally:
                wake.set()

        thread = threading.Thread(target=body, name=f"ishowd-job-{job.name}", daemon=True)
        thread.start()
        wake.wait(timeout)  # its end, its timeout, or ishowd stopping (``stop``), whichever comes first
        if thread.is_alive():
            cancel.set()
            thread.join(STOP_GRACE)
        if self.stopping and (thread.is_alive() or box[0].status == "timeout"):
            outcome = Outcome("failed", "stopped: ishowd was stopping", box[0].result if box else {})
        elif thread.is_alive() or box[0].status == "timeout":
            outcome = Outcome("timeout", f"still running after its timeout of {timeout:g}s; its children "
                              "were ended", box[0].result if box else {})
        else:
            outcome = box[0]
        with self._cond:
            self._active.pop(cancel, None)
        if not thread.is_alive():
            cancel.close()
        finished = self.clock()
        record = Run(rid, job.name, started, finished, outcome.status, outcome.detail.replace("\n", " ").strip(),
                     dict(outcome.result or {}), trigger)
        if self.store is not None:
            with self.store.transaction() as conn:
                conn.execute(sql.JOB_RUN_FINISH, {"id": rid, "finished": to_us(finished), "status": record.status,
                                                  "detail": record.detail,
                                                  "result": json.dumps(record.result, default=str)})
        self.last[job.name] = record
        self._emitted_at = None  # the next tick reports it
        level = logging.INFO if record.status in ("ok", "skipped") else logging.WARNING
        log.log(level, "job %s: %s in %.1fs: %s", job.name, record.status, finished - started, record.detail)
        return record

    def _outcome(self, job: Job, ctx: JobContext) -> Outcome:
        if job.name in self.unavailable:
            return Outcome("skipped", f"not on this host: {self.unavailable[job.name]}")
        try:
            outcome = job.run(ctx)
        except Stopped:
            if self.stopping:
                return Outcome("failed", "stopped: ishowd was stopping")
            return Outcome("timeout", "stopped at its timeout")
        except Exception as exc:  # a job that breaks is a failed run, never a dead scheduler
            log.exception("job %s broke", job.name)
            return Outcome("failed", f"broke: {type(exc).__name__}: {exc}")
        if not isinstance(outcome, Outcome) or outcome.status not in ("ok", "failed", "skipped", "timeout"):
            return Outcome("failed", f"broke: returned {outcome!r}, not an Outcome")
        return outcome

    # --- metrics -------------------------------------------------------------------------

    def samples(self, now: float) -> list[Sample]:
        """The jobs' metrics for a tick: the last run of each, and whether an enabled one is overdue.

        Once a minute, and at the tick after a run ends: they change a few times a week, and a
        minute keeps them within the stale window of /metrics and the alert rules (at least 90 s),
        so a job costs the ticks between its runs next to nothing.
        """
        if self._emitted_at is not None and 0 <= now - self._emitted_at < EMIT_EVERY:
            return []
        self._emitted_at = now
        out = []
        for name, job in sorted(self.jobs.items()):
            labels = {"job": name}
            last = self.last.get(name)
            if last is not None and last.finished is not None:
                out.append(Sample(JOB_SUCCESS, 0.0 if last.status in ("failed", "timeout") else 1.0, labels))
                out.append(Sample(JOB_LAST_RUN, round(last.finished, 3), labels))
                out.append(Sample(JOB_DURATION, round(last.finished - last.started, 3), labels))
            out += job.samples(last)
            if name in self.enabled():
                since = last.started if last is not None else self.since
                out.append(Sample(JOB_OVERDUE, 1.0 if now - since > 2 * job.period else 0.0, labels))
        return out

    def stop(self) -> None:
        """ishowd is stopping: runs in flight are asked to end (their children's groups too)."""
        with self._cond:
            self.stopping = True
            for cancel, wake in self._active.items():
                cancel.set()
                wake.set()
