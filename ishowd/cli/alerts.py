"""``ishowctl alerts`` and ``ishowctl check``, and the alerts part of ``ishowctl status``.

All three read what the daemon wrote (stdlib sqlite3 through the Reader):
they never judge a rule themselves, so they agree with the hooks.
"""
from __future__ import annotations

import sys
import time

import click

from ..alerts.rules import SEVERITY_RANK
from ..config import format_duration
from ..metrics import labels_text as _labels_text
from ..timefmt import local_time
from ..units import humanize
from .app import pass_app
from .output import Column, emit, output_options
from .status_view import StatusView

NAGIOS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
ACTIVE_FIELDS = ("rule", "severity", "state", "since", "value", "labels", "summary", "metric", "active_since")
EVENT_FIELDS = ("ts", "rule", "state", "severity", "value", "labels", "metric", "since", "summary", "hooks")


def _human(config, value, metric: str, aggregate: str | None = None) -> str:
    """A rule's value as people read it: the metric's unit, or a count for ``aggregate = "count"``."""
    m = config.metrics.get(metric)
    return humanize(value, "count" if aggregate == "count" else m.unit if m else "ratio")


def _rules(config) -> dict:
    from ..alerts.rules import rules_of
    return {r.name: r for r in rules_of(config)}


def _selector(alert, rule) -> str:
    """``gpu_temperature_celsius{gpu=gpu0}`` or ``mean(tts_rtf{...}[1h])`` for a windowed rule."""
    sel = alert.metric + _labels_text(alert.labels)
    if rule is not None and rule.window:
        sel = f"{rule.aggregate}({sel}[{format_duration(rule.window)}])"
    return sel


def _val(v) -> str:
    if v is None:
        return "-"
    if float(v).is_integer() and abs(v) < 1e15:
        return f"{v:.1f}"
    return f"{v:.6g}"


# --- ishowctl alerts -------------------------------------------------------------------

@click.command()
@click.option("--all", "show_all", is_flag=True, help="Also the history: every firing and resolving, with hook runs.")
@click.option("--limit", default=50, show_default=True, metavar="N", type=click.IntRange(min=0),
              help="With --all: the newest N events (0: all of them).")
@output_options
@pass_app
def alerts(app, show_all: bool, limit: int, output) -> None:
    """Active alerts: firing, and pending (holding, not yet for long enough).

    JSON: a list of {rule, severity, state, since, value, labels, summary, metric,
    active_since}; with --all an object {"active": [...], "history": [...]}, each
    event {ts, rule, state, severity, value, labels, metric, since, summary, hooks}
    and each hook run {hook, attempt, started, seconds, status, exit_code, output}.
    CSV: the active alerts, or with --all the events (hook runs as JSON in one
    cell), a column per label key (labels.<key>).
    """
    from ..alerts import state

    config = app.config
    reader = app.reader()
    try:
        active = state.active(reader.conn, pending=True)
        events = state.history(reader.conn, limit or None) if show_all else []
    finally:
        reader.close()
    rules = _rules(config)
    if output.json:
        act = [a.as_json() for a in active]
        value = {"active": act, "history": [e.as_json() for e in events]} if show_all else act
        emit([], [], output, json_value=value)
        return
    if output.csv:   # one header per CSV: with --all the events, which name the alerts they end or start
        rows = [e.as_json() for e in events] if show_all else [a.as_json() for a in active]
        keys = (EVENT_FIELDS if show_all else ACTIVE_FIELDS)
        emit(rows, [Column(k) for k in keys], output)
        return
    rows = [{"rule": a.rule + _labels_text(a.labels), "severity": a.severity, "state": a.state,
             "since": local_time(a.since),
             "value": _human(config, a.value, a.metric, getattr(rules.get(a.rule), "aggregate", None)),
             "summary": a.summary} for a in active]
    emit(rows, [Column("rule", "RULE"), Column("severity", "SEVERITY"), Column("state", "STATE"),
                Column("since", "SINCE"), Column("value", "VALUE"), Column("summary", "SUMMARY")],
         output, empty="no active alerts")
    if not show_all:
        return
    click.echo("")
    hist = []
    for e in events:
        hooks = "; ".join(_hooks_text(e.hooks)) or "-"
        hist.append({"ts": local_time(e.ts), "rule": e.rule + _labels_text(e.labels), "state": e.state,
                     "severity": e.severity,
                     "value": _human(config, e.value, e.metric, getattr(rules.get(e.rule), "aggregate", None)),
                     "hooks": hooks})
    emit(hist, [Column("ts", "TIME"), Column("rule", "RULE"), Column("state", "EVENT"),
                Column("severity", "SEVERITY"), Column("value", "VALUE"), Column("hooks", "HOOKS")],
         output, empty="no alert history")


def _hooks_text(runs: list[dict]) -> list[str]:
    """Per hook: its last attempt's outcome (``pager ok 0.1s``, ``pager failed (exit 1) after 3 attempts: ...``)."""
    last: dict[str, dict] = {}
    for h in runs:
        last[h["hook"]] = h
    out = []
    for name, h in last.items():
        text = f"{name} {h['status']}"
        if h["exit_code"] is not None and h["status"] != "ok":
            text += f" (exit {h['exit_code']})"
        if h["attempt"] > 1:
            text += f" after {h['attempt']} attempts"
        else:
            text += f" {h['seconds']:.1f}s"
        first = (h.get("output") or "").splitlines()[:1]
        if first and h["status"] != "ok":
            text += f": {first[0][:60]}"
        out.append(text)
    return out


# --- ishowctl check (Nagios / Icinga) ---------------------------------------------------

def _perf_label(text: str) -> str:
    text = text.replace("'", "_").replace("=", "_")
    return text if all(c.isalnum() or c in "_.-[],:" for c in text) else f"'{text}'"


PERF_UOM = {"bytes": "B", "percent": "%", "seconds": "s"}


def _perf_thresholds(rules, metric: str) -> tuple[str, str]:
    """warn;crit in Nagios range syntax from the rules on ``metric`` without a window."""
    out = {"warning": "", "critical": ""}
    for r in rules:
        if r.metric != metric or r.window or r.severity not in out or out[r.severity]:
            continue
        t = _val(r.threshold).removesuffix(".0")
        if r.op in (">", ">="):
            out[r.severity] = t
        elif r.op in ("<", "<="):
            out[r.severity] = t + ":"
    return out["warning"], out["critical"]


def check_line(config, reader, now: float) -> tuple[int, str]:
    """The Nagios plugin line and exit status."""
    from ..alerts import state

    last = reader.last_ts()
    interval = config.sampling.interval
    limit = config.alerts.check_stale_intervals * interval
    if last is None:
        return 3, "ISHOWD UNKNOWN - the store has no samples yet (is `ishowd run` up?)"
    measured = reader.age(now, config.host.procfs_root)
    if measured.seconds is None:
        return 3, (f"ISHOWD UNKNOWN - the newest sample is stamped {measured.ahead:.0f}s in the future "
                   "(the clock stepped back?) and no monotonic stamp tells its age; is `ishowd run` up?")
    age = measured.seconds
    if age > limit:
        return 3, (f"ISHOWD UNKNOWN - the daemon has not written for {age:.0f}s "
                   f"(it samples every {interval:g}s; is `ishowd run` up?) | age={age:.0f}s")
    rules_by_name = _rules(config)
    rules = list(rules_by_name.values())
    firing = state.active(reader.conn)
    worst = max((SEVERITY_RANK[a.severity] for a in firing), default=0)
    parts = [f"{a.rule}: {_selector(a, rules_by_name.get(a.rule))}={_val(a.value)}" for a in firing]
    if parts:
        text = ", ".join(parts)
        if worst == 0:
            text = f"{len(parts)} info alert{'s' if len(parts) > 1 else ''}: {text}"
    else:
        text = f"no alerts firing ({len(rules)} rules)"
    perf = []
    counts = {s: sum(1 for a in firing if a.severity == s) for s in ("critical", "warning", "info")}
    perf += [f"{s}={n}" for s, n in counts.items()]
    perf.append(f"age={age:.0f}s;;{limit:g}")
    metrics = {r.metric for r in rules if not r.window}
    if metrics:
        for row in reader.current(max(limit, 90)):
            if row.name not in metrics:
                continue
            if not any(r.metric == row.name and r.matches(row.labels) and not r.window for r in rules):
                continue
            label = row.name + (f"[{','.join(row.labels.values())}]" if row.labels else "")
            m = config.metrics.get(row.name)
            uom = "c" if m is not None and m.kind == "counter" else PERF_UOM.get(m.unit if m else "", "")
            warn, crit = _perf_thresholds(rules, row.name)
            perf.append(f"{_perf_label(label)}={_val(row.value).removesuffix('.0')}{uom};{warn};{crit}".rstrip(";"))
    return worst, f"ISHOWD {NAGIOS[worst]} - {text} | {' '.join(perf)}"



@click.command()
@pass_app
def check(app) -> None:
    """One line in the Nagios plugin format; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

    WARNING and CRITICAL name the firing alerts of those severities (info alerts
    never raise the status). UNKNOWN when the store cannot be read, when the
    daemon has not written for [alerts] check_stale_intervals sampling
    intervals, or when the configuration is broken (the line names the key).
    Performance data after "|": alert counts, the age of the newest sample,
    and the latest value of every metric a rule judges, with its thresholds.
    """
    import sqlite3

    from ..config import ConfigError
    from ..store.errors import StoreError

    def out(code: int, line: str) -> None:
        click.echo(line)
        sys.stdout.flush()
        sys.exit(code)

    try:
        config = app.config
        reader = app.reader()
    except ConfigError as exc:
        out(3, f"ISHOWD UNKNOWN - configuration error: {exc}")
    except StoreError as exc:
        out(3, f"ISHOWD UNKNOWN - cannot read the store: {exc}")
    try:
        code, line = check_line(config, reader, time.time())
    except sqlite3.Error as exc:
        code, line = 3, f"ISHOWD UNKNOWN - cannot read the store: {exc}"
    finally:
        reader.close()
    out(code, line)


# --- ishowctl status ----------------------------------------------------------------------

def status_alerts(view: StatusView) -> None:
    from ..alerts import state
    from ..config import ConfigError

    try:
        rules = _rules(view.config)
    except ConfigError:  # pragma: no cover - the config already loaded
        rules = {}
    active = state.active(view.reader.conn, pending=True)
    firing = [a for a in active if a.state == "firing"]
    view.data["alerts"] = [a.as_json() for a in firing]
    lines = []
    for a in firing:
        rule = rules.get(a.rule)
        value = _human(view.config, a.value, a.metric, rule.aggregate if rule else None)
        line = (f"{a.severity.upper():8} {a.rule}{_labels_text(a.labels)} since {local_time(a.since)}: "
                f"{a.summary or (rule.describe() if rule else a.metric)} ({value})")
        if a.severity == "critical":
            view.top.append(line)
        else:
            lines.append(line)
    pending = [a for a in active if a.state == "pending"]
    # apart from "alerts", which scripts read as what is firing
    view.data["pending"] = [a.as_json() for a in pending]
    if pending:
        lines.append("pending: " + ", ".join(f"{a.rule}{_labels_text(a.labels)} since {local_time(a.active_since)}"
                                             for a in pending))
    if not firing and not pending:
        lines.append(f"none firing ({len(rules)} rules)")
    elif not lines:
        lines.append("see above")
    view.sections.append(("alerts", lines))
