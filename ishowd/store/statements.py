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

from sqlalchemy import and_, bindparam as p, case, delete, func, insert, literal_column, select, update
from sqlalchemy.dialects import sqlite

from .schema import (alert_events, alert_state, chunks, head, hook_runs, log_counters, log_positions, rtf_histogram,
                     rtf_records, job_runs, series, store_meta)

STATEMENTS = {
    # series
    "SERIES_ALL": select(series.c.id, series.c.name, series.c.labels).order_by(series.c.name, series.c.labels),
    "SERIES_BY_NAME": select(series.c.id, series.c.name, series.c.labels)
    .where(series.c.name == p("name")).order_by(series.c.labels),
    "SERIES_INSERT": insert(series).values(name=p("name"), labels=p("labels")),
    "METRIC_NAMES": select(series.c.name).distinct().order_by(series.c.name),
    # the head
    "HEAD_INSERT": insert(head).values(ts=p("ts"), data=p("data"), mono=p("mono")),
    # the newest write (write order, not time order: after a clock step the two differ)
    "HEAD_NEWEST_WRITE": select(head.c.ts, head.c.mono).where(head.c.id == select(func.max(head.c.id)).scalar_subquery()),
    "META_GET": select(store_meta.c.value).where(store_meta.c.key == p("key")),
    "META_DELETE": delete(store_meta).where(store_meta.c.key == p("key")),
    "META_PUT": insert(store_meta).values(key=p("key"), value=p("value")).prefix_with("OR REPLACE"),
    "HEAD_MIN_TS": select(func.min(head.c.ts)),
    "HEAD_MAX_TS": select(func.max(head.c.ts)),
    "HEAD_SINCE": select(head.c.ts, head.c.data).where(head.c.ts >= p("since")).order_by(head.c.id),
    "HEAD_RANGE": select(head.c.ts, head.c.data)
    .where(head.c.ts >= p("since"), head.c.ts < p("until")).order_by(head.c.id),
    # the hours the head holds rows of before ``until`` (rows written again into sealed hours)
    "HEAD_HOURS_UNTIL": select((head.c.ts - head.c.ts % literal_column("3600")).label("hour")).distinct()
    .where(head.c.ts < p("until")),
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
    "CHUNKS_NEWEST_RAW": select(func.max(chunks.c.start_ts)).where(chunks.c.kind == literal_column("'raw'")),
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

# --- the backend log (ishowd/backend): RTF records, log positions, ingestion counters ---------------
_POSITION = [log_positions.c[n] for n in ("log", "role", "path", "dev", "inode", "fingerprint", "fp_len", "offset",
                                          "skip_line", "first_pending", "size", "changed")]
_RTF_ROW = [rtf_records.c[n] for n in ("ts", "rtf", "elapsed_ms", "audio_seconds", "engine", "voice", "source",
                                       "first_after_start")]
_RTF_IN = (rtf_records.c.ts >= p("since"), rtf_records.c.ts < p("until"))
# ISO weeks (Monday 00:00 UTC) as integers: (seconds - the first Monday after the epoch) / a week, in
# SQLite's integer division (SQLAlchemy's // needs floor(), missing from older SQLite builds).
_WEEK = literal_column("(rtf_records.ts / 1000000 - :monday0) / :week").label("week")
_ONE, _ZERO = literal_column("1"), literal_column("0")
_counter_add = sqlite.insert(log_counters).values(name=p("name"), label=p("label"), value=p("value"))
_histogram_add = sqlite.insert(rtf_histogram).values(engine=p("engine"), voice=p("voice"), source=p("source"),
                                                    le=p("le"), count=p("count"), rtf_sum=p("rtf_sum"))

JOB_RUN_COLUMNS = (job_runs.c.id, job_runs.c.job, job_runs.c.started, job_runs.c.finished, job_runs.c.status,
                   job_runs.c.detail, job_runs.c.result, job_runs.c.trigger)

STATEMENTS.update({
    "RTF_INSERT": insert(rtf_records).prefix_with("OR IGNORE").values(
        ts=p("ts"), source=p("source"), voice=p("voice"), elapsed_ms=p("elapsed_ms"),
        audio_seconds=p("audio_seconds"), rtf=p("rtf"), engine=p("engine"),
        first_after_start=p("first_after_start"), log=p("log")),
    "RTF_RANGE": select(*_RTF_ROW).where(*_RTF_IN).order_by(rtf_records.c.ts),
    "RTF_RANGE_SOURCE": select(*_RTF_ROW).where(*_RTF_IN, rtf_records.c.source == p("source"))
    .order_by(rtf_records.c.ts),
    "RTF_SOURCE_VALUES": select(rtf_records.c.source, rtf_records.c.rtf)
    .where(*_RTF_IN, rtf_records.c.rtf.is_not(None)),
    # the weekly report, one week at a time (a range scan of the clustered key, no sort): how many
    # requests were judged, how many were first after a start, and live chat's count and total
    "RTF_WEEK_COUNTS": select(
        func.total(case((and_(rtf_records.c.source == literal_column("'api'"),
                              rtf_records.c.first_after_start == literal_column("0")), _ONE), else_=_ZERO)),
        func.total(case((and_(rtf_records.c.source == literal_column("'api'"),
                              rtf_records.c.first_after_start != literal_column("0")), _ONE), else_=_ZERO)),
        func.total(case((rtf_records.c.source == literal_column("'chat'"), _ONE), else_=_ZERO)),
        func.total(case((rtf_records.c.source == literal_column("'chat'"), rtf_records.c.rtf), else_=_ZERO)))
    .where(*_RTF_IN, rtf_records.c.rtf.is_not(None)),
    # ... the judged values (API, not first after a start) in time order, hence week by week ...
    "RTF_JUDGED_VALUES": select(rtf_records.c.rtf)
    .where(*_RTF_IN, rtf_records.c.source == literal_column("'api'"),
           rtf_records.c.first_after_start == literal_column("0"), rtf_records.c.rtf.is_not(None))
    .order_by(rtf_records.c.ts),
    # ... and when the slow ones ran (for the likely causes)
    "RTF_JUDGED_ABOVE": select(rtf_records.c.ts)
    .where(*_RTF_IN, rtf_records.c.source == literal_column("'api'"),
           rtf_records.c.first_after_start == literal_column("0"), rtf_records.c.rtf > p("limit")),
    # the histogram: a batch's observations added per series and bucket, and all of it for /metrics
    "RTF_HISTOGRAM_ADD": _histogram_add.on_conflict_do_update(
        index_elements=[rtf_histogram.c.engine, rtf_histogram.c.voice, rtf_histogram.c.source, rtf_histogram.c.le],
        set_={"count": rtf_histogram.c.count + _histogram_add.excluded.count,
              "rtf_sum": rtf_histogram.c.rtf_sum + _histogram_add.excluded.rtf_sum}),
    "RTF_HISTOGRAM_ALL": select(rtf_histogram.c.engine, rtf_histogram.c.voice, rtf_histogram.c.source,
                                rtf_histogram.c.le, rtf_histogram.c.count, rtf_histogram.c.rtf_sum),
    "LOG_POSITIONS_OF": select(*_POSITION).where(log_positions.c.log == p("log")),
    "LOG_POSITION_STORED": select(log_positions.c.role, log_positions.c.path, log_positions.c.dev,
                                  log_positions.c.inode, log_positions.c.offset)
    .where(log_positions.c.log == p("log"), log_positions.c.role == p("role")),
    "LOG_POSITION_SAVE": insert(log_positions).prefix_with("OR REPLACE").values(
        {c.name: p(c.name) for c in _POSITION}),
    # a rotation cut the front off the file: the position moves back with it (jobs/rotate_logs.py)
    "LOG_POSITION_SHIFT": update(log_positions)
    .where(log_positions.c.log == p("log"), log_positions.c.role == p("role"))
    .values(offset=p("offset"), fingerprint=p("fingerprint"), fp_len=p("fp_len"), size=p("size")),
    "LOG_POSITIONS_DELETE": delete(log_positions).where(log_positions.c.log == p("log")),
    "LOG_POSITION_DELETE": delete(log_positions)
    .where(log_positions.c.log == p("log"), log_positions.c.role == p("role")),
    "LOG_COUNTER_ADD": _counter_add.on_conflict_do_update(
        index_elements=[log_counters.c.name, log_counters.c.label],
        set_={"value": log_counters.c.value + _counter_add.excluded.value}),
    "LOG_COUNTERS_ALL": select(log_counters.c.name, log_counters.c.label, log_counters.c.value),
    # maintenance jobs
    "JOB_RUN_START": insert(job_runs).values(job=p("job"), started=p("started"), status=literal_column("'running'"),
                                             trigger=p("trigger"), slot=p("slot")),
    "JOB_RUN_FINISH": update(job_runs).where(job_runs.c.id == p("id"))
    .values(finished=p("finished"), status=p("status"), detail=p("detail"), result=p("result")),
    # a run the daemon's end cut short (a crash, kill -9): found "running" at the next start
    # what a run has done so far, written in the same transaction as what it did (the rotation's cut)
    "JOB_RUN_PROGRESS": update(job_runs).where(job_runs.c.id == p("id")).values(result=p("result")),
    "JOB_RUNS_INTERRUPTED": update(job_runs).where(job_runs.c.status == literal_column("'running'"))
    .values(finished=job_runs.c.started, status=literal_column("'failed'"), detail=p("detail")),
    "JOB_RUNS_SINCE": select(*JOB_RUN_COLUMNS).where(job_runs.c.started >= p("since"))
    .order_by(job_runs.c.started, job_runs.c.id),
    "JOB_RUNS_LAST": select(*JOB_RUN_COLUMNS)
    .where(job_runs.c.id.in_(select(func.max(job_runs.c.id)).group_by(job_runs.c.job))),
    "JOB_RUN_BY_ID": select(*JOB_RUN_COLUMNS).where(job_runs.c.id == p("id")),
    "JOB_LAST_SLOTS": select(job_runs.c.job, func.max(job_runs.c.slot)).group_by(job_runs.c.job),
})

# Run with executemany over many rows: compiled with ``?`` placeholders, so rows are plain tuples
# (a dict per row costs more than the insert); ``<NAME>_PARAMS`` gives the order.
POSITIONAL = {"RTF_INSERT", "RTF_HISTOGRAM_ADD"}

GENERATED = Path(__file__).with_name("sql.py")


def compile_all() -> str:
    named, qmark = sqlite.dialect(paramstyle="named"), sqlite.dialect(paramstyle="qmark")
    lines = ['"""SQL compiled from ``statements.py`` by `python -m ishowd.store.statements`: do not edit."""', ""]
    for name, stmt in STATEMENTS.items():
        compiled = stmt.compile(dialect=qmark if name in POSITIONAL else named)
        text = " ".join(str(compiled).split())
        lines.append(f"{name} = {text!r}")
        if name in POSITIONAL:
            lines.append(f"{name}_PARAMS = {tuple(compiled.positiontup)!r}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    GENERATED.write_text(compile_all())
    print(f"wrote {GENERATED}")
