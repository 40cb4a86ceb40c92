"""``ishowctl jobs list|run|history``: the maintenance jobs, their schedule and their runs."""
from __future__ import annotations

import sys
import time

import click

from ..timefmt import iso, local_time
from .app import pass_app
from .history import WHEN
from .output import Column, emit, output_options


def _runs(rows) -> list:
    from ..jobs.runner import Run
    return [Run.from_row(r) for r in rows]


def _job_names(app) -> list[str]:
    from .. import catalog
    return sorted(catalog.jobs())


@click.group()
def jobs() -> None:
    """The maintenance jobs: their schedule, their runs, running one now."""


@jobs.command("list")
@output_options
@pass_app
def list_jobs(app, output) -> None:
    """Every maintenance job: schedule, next run, last run and its outcome."""
    from .. import catalog
    from ..jobs.cron import Crontab
    from ..jobs.runner import timezone

    from ..store.errors import NoStore

    config = app.config
    last, slots = {}, {}
    try:
        reader = app.reader()
    except NoStore:  # no run recorded yet: the schedule alone
        reader = None
    if reader is not None:
        try:
            last = {r.job: r for r in _runs(reader.job_last_runs())}
            slots = reader.job_last_slots()
        finally:
            reader.close()
    tz = timezone(config)
    now = time.time()
    rows = []
    for name in sorted(catalog.jobs()):
        s = config.sections["jobs." + name]
        nxt = Crontab(s.schedule).next_after(max(now, slots.get(name, now)), tz) if s.enabled else None
        run = last.get(name)
        rows.append({"job": name, "schedule": s.schedule, "enabled": s.enabled,
                     "next": None if nxt is None else iso(nxt),
                     "last": None if run is None else run.as_json(),
                     "_next": "disabled" if nxt is None else local_time(nxt),
                     "_last": "never" if run is None else f"{run.status} {local_time(run.started)}: {run.detail}"})
    emit(rows, [Column("job"), Column("schedule"), Column("_next", "next"), Column("_last", "last run")], output)


@jobs.command("history")
@click.option("--job", "job_name", metavar="NAME", help="Only this job's runs.")
@click.option("--since", default="30d", type=WHEN, show_default=True, help="A duration ago, or an ISO time.")
@output_options
@pass_app
def history(app, job_name, since, output) -> None:
    """Past job runs, oldest first."""
    if job_name is not None and job_name not in _job_names(app):
        raise click.BadParameter(f"no job {job_name!r} (jobs: {', '.join(_job_names(app))})", param_hint="--job")
    reader = app.reader()
    try:
        runs = [r for r in _runs(reader.job_runs(since * 1_000_000)) if job_name in (None, r.job)]
    finally:
        reader.close()
    rows = []
    for r in runs:
        d = r.as_json()
        del d["result"]
        d["_started"] = local_time(r.started)
        d["_took"] = "" if r.finished is None else f"{r.finished - r.started:.1f}s"
        rows.append(d)
    emit(rows, [Column("_started", "started"), Column("job"), Column("status"), Column("_took", "took"),
                Column("detail")], output, empty="no job runs in that range")


@jobs.command("run")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the recorded run as JSON.")
@pass_app
def run(app, name, as_json) -> None:
    """Run job NAME now: through the running daemon when one is up, else in this process.

    Progress goes to stderr; the outcome to stdout. Exit 0 when the run ended
    ok, 1 otherwise.
    """
    names = _job_names(app)
    if name not in names:
        raise click.UsageError(f"no job {name!r} (jobs: {', '.join(names)})")
    record = run_job(app, name, lambda text: click.echo(f"{name}: {text}", err=True))
    _show(record, as_json)
    sys.exit(0 if record["status"] == "ok" else 1)


def run_job(app, name: str, progress) -> dict:
    """Run job ``name`` now as an operator, through the running daemon when one is up, else in this
    process under the store's writer lock; its recorded run (``Run.as_json``). ``progress`` gets
    each line the run reports."""
    from ..control import NoDaemon, request, socket_path
    from ..paths import store_path

    path = socket_path(store_path(app.config))
    record = None
    try:
        for answer in request(path, {"op": "run", "job": name}):
            if "progress" in answer:
                progress(str(answer["progress"]))
            elif "error" in answer:
                raise click.ClickException(str(answer["error"]))
            elif "run" in answer:
                record = answer["run"]
        if record is None:
            raise click.ClickException("the daemon closed the connection before the run ended "
                                       "(`ishowctl jobs history` will show how it ended)")
    except NoDaemon:
        progress("no daemon is running: running it in this process")
        record = _run_here(app, name, progress)
    except PermissionError:
        raise click.ClickException(f"{path}: the daemon's control socket refused you; run as the daemon's "
                                   "user or root (sudo -u ishowd ishowctl ...)") from None
    return record


def _run_here(app, name: str, progress) -> dict:
    from ..jobs.runner import JobRunner, set_up
    from ..store.writer import open_store

    import logging
    logging.getLogger("ishowd").addHandler(logging.NullHandler())  # the outcome is printed below, once
    store = open_store(app.config)  # the writer lock: refused while a daemon writes the store
    try:
        runner = JobRunner(app.config, store, *set_up(app.config))
        return runner.run(name, trigger="operator", progress=progress).as_json()
    finally:
        store.close()


def _show(record: dict, as_json: bool) -> None:
    import json
    if as_json:
        click.echo(json.dumps(record, ensure_ascii=False, indent=2, default=str))
        return
    from datetime import datetime
    took = ""
    if record.get("finished"):
        took = f" in {(datetime.fromisoformat(record['finished']) - datetime.fromisoformat(record['started'])).total_seconds():.1f}s"
    click.echo(f"{record['job']}: {record['status']}{took}: {record['detail']}")
