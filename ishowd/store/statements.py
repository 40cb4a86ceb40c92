"""Every SQL statement ishowd runs, as SQLAlchemy Core constructs over ``schema.py``.

The daemon and the CLI do not import SQLAlchemy at run time (it costs about
26 MB of resident memory and 130 ms of start-up, more than the whole daemon
may use). Instead, the statements below are compiled for SQLite into
``sql.py``, which they run through the stdlib ``sqlite3``. So the schema and
every query over it still live in one place, checked by SQLAlchemy:

    python -m ishowd.store.statements        # regenerate sql.py after a change here or in schema.py

``tests/test_store.py`` fails while ``sql.py`` is stale.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import bindparam as p, delete, func, insert, select, update
from sqlalchemy.dialects import sqlite

from .schema import alert_events, alert_state, chunks, head, hook_runs, series

STATEMENTS = {
    # series
    "SERIES_ALL": select(series.c.id, series.c.name, series.c.labels).order_by(series.c.name, series.c.labels),
    "SERIES_BY_NAME": select(series.c.id, series.c.name, series.c.labels)
    .where(series.c.name == p("name")).order_by(series.c.labels),
    "SERIES_INSERT": insert(series).values(name=p("name"), labels=p("labels")),
    "METRIC_NAMES": select(series.c.name).distinct().order_by(series.c.name),
    # the head
    "HEAD_INSERT": insert(head).values(ts=p("ts"), data=p("data")),
    "HEAD_MIN_TS": select(func.min(head.c.ts)),
    "HEAD_MAX_TS": select(func.max(head.c.ts)),
    "HEAD_SINCE": select(head.c.ts, head.c.data).where(head.c.ts >= p("since")).order_by(head.c.id),
    "HEAD_RANGE": select(head.c.ts, head.c.data)
    .where(head.c.ts >= p("since"), head.c.ts < p("until")).order_by(head.c.id),
    "HEAD_DELETE_RANGE": delete(head).where(head.c.ts >= p("since"), head.c.ts < p("until")),
    # sealed chunks
    "CHUNK_GET": select(chunks.c.data)
    .where(chunks.c.series_id == p("series_id"), chunks.c.kind == p("kind"), chunks.c.start_ts == p("start_ts")),
    "CHUNK_INSERT": insert(chunks).values(series_id=p("series_id"), kind=p("kind"), start_ts=p("start_ts"),
                                          count=p("count"), data=p("data")),
    "CHUNK_UPDATE": update(chunks)
    .where(chunks.c.series_id == p("series_id"), chunks.c.kind == p("kind"), chunks.c.start_ts == p("start_ts"))
    .values(count=p("count"), data=p("data")),
    "CHUNKS_RANGE": select(chunks.c.data)
    .where(chunks.c.series_id == p("series_id"), chunks.c.kind == p("kind"),
           chunks.c.start_ts >= p("since"), chunks.c.start_ts < p("until")).order_by(chunks.c.start_ts),
    "CHUNKS_PRUNE": delete(chunks).where(chunks.c.kind == p("kind"), chunks.c.start_ts < p("before")),
    # alerts (ishowd/alerts)
    "SERIES_BY_ID": select(series.c.name, series.c.labels).where(series.c.id == p("id")),
    "ALERT_STATE_ALL": select(alert_state.c.rule, alert_state.c.labels, alert_state.c.metric, alert_state.c.state,
                              alert_state.c.severity, alert_state.c.active_since, alert_state.c.fired_at,
                              alert_state.c.value, alert_state.c.summary, alert_state.c.event_id),
    "ALERT_STATE_PUT": insert(alert_state).prefix_with("OR REPLACE").values(
        rule=p("rule"), labels=p("labels"), metric=p("metric"), state=p("state"), severity=p("severity"),
        active_since=p("active_since"), fired_at=p("fired_at"), value=p("value"), summary=p("summary"),
        event_id=p("event_id")),
    "ALERT_STATE_DELETE": delete(alert_state).where(alert_state.c.rule == p("rule"),
                                                    alert_state.c.labels == p("labels")),
    "ALERT_EVENT_INSERT": insert(alert_events).values(
        ts=p("ts"), rule=p("rule"), labels=p("labels"), metric=p("metric"), state=p("state"),
        severity=p("severity"), value=p("value"), since=p("since"), summary=p("summary")),
    "ALERT_EVENTS_NEWEST": select(alert_events.c.id, alert_events.c.ts, alert_events.c.rule, alert_events.c.labels,
                                  alert_events.c.metric, alert_events.c.state, alert_events.c.severity,
                                  alert_events.c.value, alert_events.c.since, alert_events.c.summary)
    .order_by(alert_events.c.ts.desc(), alert_events.c.id.desc()).limit(p("limit")).offset(p("offset")),
    "HOOK_RUN_INSERT": insert(hook_runs).values(
        event_id=p("event_id"), hook=p("hook"), attempt=p("attempt"), started=p("started"),
        duration=p("duration"), status=p("status"), exit_code=p("exit_code"), output=p("output")),
    "HOOK_RUNS_FROM": select(hook_runs.c.event_id, hook_runs.c.hook, hook_runs.c.attempt, hook_runs.c.started,
                             hook_runs.c.duration, hook_runs.c.status, hook_runs.c.exit_code, hook_runs.c.output)
    .where(hook_runs.c.event_id >= p("event_id")).order_by(hook_runs.c.id),
}

GENERATED = Path(__file__).with_name("sql.py")


def compile_all() -> str:
    dialect = sqlite.dialect(paramstyle="named")
    lines = ['"""SQL compiled from ``statements.py`` by `python -m ishowd.store.statements`: do not edit."""', ""]
    for name, stmt in STATEMENTS.items():
        text = " ".join(str(stmt.compile(dialect=dialect)).split())
        lines.append(f"{name} = {text!r}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    GENERATED.write_text(compile_all())
    print(f"wrote {GENERATED}")
