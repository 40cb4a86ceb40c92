"""``ishowctl audit``: the deployment's 15 health checks, now (the ``audit`` job, run as ``jobs run`` runs it)."""
from __future__ import annotations

import sys

import click

from .app import pass_app
from .output import output_options

FIELDS = ("check", "group", "passed", "detail", "seconds")


@click.command()
@output_options
@pass_app
def audit(app, output) -> None:
    """Run the audit's 15 checks now: pre-flight, performance, functional, system, optimisation.

    Through the running daemon when one is up, else in this process; recorded
    as a run of the audit job (`ishowctl jobs history --job audit`). One line
    per check, then N/15 passed; checks go to stderr as they finish. Exit 0 when
    every check passed, 1 otherwise. --json: a list of {check, group, passed,
    detail, seconds}; --csv the same columns.
    """
    from .jobs import run_job
    from .output import Column, emit, table

    progress, clear = _progress()
    try:
        record = run_job(app, "audit", progress)
    finally:
        clear()
    result = record.get("result") or {}
    checks = result.get("checks") or []
    if output.format != "table":
        emit([{k: c.get(k) for k in FIELDS} for c in checks], [Column(k) for k in FIELDS], output)
    else:
        if checks:
            click.echo(table([["✓" if c["passed"] else "✗", c["group"], f"{c['seconds']:.2f}s", c["check"],
                               c["detail"]] for c in checks]))
        total = result.get("total")
        if total is None:                                # skipped before any check ran
            from ..audit.checks import CHECKS
            total = len(CHECKS)
        click.echo(f"{sum(bool(c['passed']) for c in checks)}/{total} passed")
    if record["status"] not in ("ok", "failed"):        # skipped or timed out: the checks do not say why
        click.echo(f"audit: {record['status']}: {record['detail']}", err=True)
    sys.exit(0 if record["status"] == "ok" else 1)


def _progress():
    """(show a line, clear it). On a terminal each check as it finishes overwrites the one before
    (the table follows; a line per check would list each twice); elsewhere (a log, a pipe) every
    line stays."""
    err = click.get_text_stream("stderr")
    if not err.isatty():
        return (lambda text: click.echo(f"audit: {text}", err=True)), (lambda: None)
    import shutil
    width = max(20, shutil.get_terminal_size().columns - 1)

    def show(text: str) -> None:
        err.write("\r\x1b[2K" + f"audit: {text}"[:width])
        err.flush()

    def clear() -> None:
        err.write("\r\x1b[2K")
        err.flush()
    return show, clear
