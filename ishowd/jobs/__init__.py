"""Maintenance jobs: calendar work the daemon runs (log rotation, backups, the leak check...).

One module per job registers its class, and declares its config keys as plain
data beside it, as a collector does (the catalog lists the modules):

    KEYS = job_keys("backup", "30 3 1 * *", "10m", {
        "dir": Key("path", "", "where backups go (default: <root>/backups)"),
    })

    @register
    class Backup(Job):
        name = "backup"
        period = 31 * DAY                        # for job-overdue: twice this without a run alerts
        touches = frozenset({"deployment-files"})
        def run(self, ctx: JobContext) -> Outcome:
            ...
            return Outcome("ok", "4 files, 81 kB, verified", {"files": 4})

Every job gets ``[jobs.<name>] schedule`` (crontab fields, host local time, or
``[jobs] timezone``), ``enabled`` and ``timeout``; its own keys come after.
A job module imports only the standard library at the top: ``ishowctl`` reads
every module's declarations on each start.

How a run goes (``runner.py``): never two runs of one job at once, nor of two
jobs whose ``touches`` share a name; the run gets a ``JobContext`` whose
``run()`` starts children through ``ishowd/process.py`` bounded by what is left
of the job's timeout; past the timeout the children's groups are ended, the run
is recorded ``timeout``, and the job's own code is asked to stop (``ctx.check()``
raises ``Stopped`` from then on). A job that raises is recorded ``failed`` with
the exception as its detail. Statuses: ``ok``, ``failed`` (it ran and found a
problem, or broke), ``skipped`` (a precondition refused it; the reason is the
detail), ``timeout``.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, NamedTuple, Optional

from ..config import Key
from ..metrics import declare
from ..parts import Part, Registry

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Config
    from ..process import Cancel, RunResult

HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
STATUSES = ("ok", "failed", "skipped", "timeout")

# Reported every tick from the last run of each job (``runner.JobRunner.samples``).
JOB_SUCCESS = declare("ishowd_job_success", "boolean",
                      "1 when the job's last run ended ok or skipped, 0 when it failed or timed out.", ("job",),
                      group="jobs")
JOB_LAST_RUN = declare("ishowd_job_last_run_timestamp_seconds", "seconds",
                       "When the job's last run ended (seconds since the epoch).", ("job",), group="jobs")
JOB_DURATION = declare("ishowd_job_duration_seconds", "seconds", "How long the job's last run took.", ("job",),
                       group="jobs")
JOB_OVERDUE = declare("ishowd_job_overdue", "boolean",
                      "1 when an enabled job has not run for twice its period, else 0.", ("job",), group="jobs")
METRICS = (JOB_SUCCESS, JOB_LAST_RUN, JOB_DURATION, JOB_OVERDUE)


class Outcome(NamedTuple):
    status: str                 # ok | failed | skipped | timeout
    detail: str                 # one line for people
    result: dict = {}           # what the run found, as JSON


class Stopped(Exception):
    """Raised by ``JobContext.check()`` once the run is past its timeout or ishowd is stopping."""


class JobContext:
    """What a run gets: the config, the clock, a bounded way to start children, progress."""

    def __init__(self, config: "Config", *, timeout: float, cancel: "Cancel", store=None,
                 progress: Optional[Callable[[str], None]] = None, now: Optional[float] = None,
                 by: str = "schedule", collectors: Optional[Callable[[], dict]] = None):
        self.config = config
        self.store = store              # the writer (``store.writer.Store``), or None for a read-only run
        self.now = time.time() if now is None else now
        self.deadline = time.monotonic() + timeout
        self.cancel = cancel
        self.by = by                    # "schedule", "catch-up" (missed while down) or "operator"
        self.run_id: Optional[int] = None   # its row in job_runs
        # the collector classes by name, handed down from the catalog (a job that reads the hardware
        # now, as the audit and the benchmark read the GPU, runs them: it never imports them)
        self.collectors = collectors or dict
        self._progress = progress

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def check(self) -> None:
        """Call between steps: raises ``Stopped`` once the run must end."""
        if self.cancel.is_set() or time.monotonic() >= self.deadline:
            raise Stopped("past its timeout" if not self.cancel.is_set() else "stopped")

    def progress(self, text: str) -> None:
        """One line for whoever watches the run (``ishowctl jobs run`` shows it)."""
        if self._progress is not None:
            self._progress(text)

    def run(self, argv, *, timeout: Optional[float] = None, stdin: bytes = b"", env: Optional[dict] = None,
            max_lines: int = 200, cwd: str = "/", stderr: bool = True,
            max_bytes: Optional[int] = None) -> "RunResult":
        """A child command (argv, never a shell), bounded by ``timeout`` and what is left of the run's.
        Its output is kept up to ``max_bytes`` (default ``process.OUTPUT_BYTES``, 8 KiB)."""
        from ..process import OUTPUT_BYTES, run_command
        self.check()
        limit = self.remaining() if timeout is None else min(timeout, self.remaining())
        return run_command(argv, stdin, env, limit, max_lines=max_lines, cwd=cwd, stderr=stderr,
                           cancel=self.cancel, max_bytes=max_bytes or OUTPUT_BYTES)


class Job(Part):
    kind = "job"
    #: seconds between scheduled runs, roughly (weekly: WEEK): ``job-overdue`` fires after twice this
    period: float = WEEK
    #: what the job works on; jobs sharing a name never run at once (rotation and the log tailer
    #: share "backend-log"; the benchmark and the audit "synthesis")
    touches: frozenset = frozenset()

    def __init__(self, config: "Config"):
        self.config = config

    @property
    def settings(self):
        """This job's ``[jobs.<name>]`` section."""
        return self.config.sections["jobs." + self.name]

    def run(self, ctx: JobContext) -> Outcome:  # pragma: no cover - abstract
        raise NotImplementedError

    def samples(self, last) -> list:
        """The job's own metrics for a tick, from its last run (``runner.Run``, None before the first):
        the runner reports them with its own, once a minute."""
        return []

    _kept = None            # what ``latest_result`` last found
    _looked = False         # the store was searched for it (once, after a start)

    def latest_result(self, last, pick: Callable[[dict], object]):
        """What ``pick`` finds in a run's result (None: nothing), from the newest run that has it:
        ``last`` when it does, else the one kept; once after a start, the newest such run in the
        store. A last run without it (skipped) leaves the older one standing."""
        found = pick(last.result) if last is not None else None
        if found is not None:
            self._kept = found
        elif self._kept is None and not self._looked:
            self._looked = True
            self._kept = self._stored_result(pick)
        return self._kept

    def _stored_result(self, pick):
        import json
        import sqlite3

        from ..paths import store_path
        from ..store.errors import NoStore
        from ..store.reader import Reader
        try:
            reader = Reader(store_path(self.config))
        except NoStore:
            return None
        try:
            runs = reader.job_runs()
        except sqlite3.Error:
            return None
        finally:
            reader.close()
        for row in reversed(runs):
            if row[1] == self.name and row[6]:
                try:
                    found = pick(json.loads(row[6]))
                except ValueError:
                    continue
                if found is not None:
                    return found
        return None


def job_keys(name: str, schedule: str, timeout: str, own: Optional[dict[str, Key]] = None) -> dict:
    """The ``[jobs.<name>]`` keys: schedule, enabled and timeout, then the job's own."""
    from .cron import crontab_problem
    keys = {
        "schedule": Key("str", schedule, "when it runs: crontab fields (minute hour day-of-month month "
                        "day-of-week), host local time", check=crontab_problem),
        "enabled": Key("bool", True, "false: never scheduled (`ishowctl jobs run` still runs it)"),
        "timeout": Key("duration", timeout, "a run still going after this is ended and recorded `timeout`",
                       min=1, max=7 * DAY),
    }
    keys.update(own or {})
    return {"jobs." + name: keys}


REGISTRY: Registry["Job"] = Registry("job")
register = REGISTRY.register

