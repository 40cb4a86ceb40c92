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

from .schema import chunks, head, series

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
