"""The store's schema as SQLAlchemy Core tables: the one definition of it.

The Alembic migrations under ``migrations/versions`` create exactly this (a
test compares them). Raw samples are seconds since the epoch, UTC, as
integers; per-event records (issue-specific tables) use microseconds.
"""
from __future__ import annotations

from sqlalchemy import (BigInteger, Column, Float, Index, Integer, LargeBinary, MetaData, PrimaryKeyConstraint,
                        Table, Text, UniqueConstraint)

metadata = MetaData()

series = Table(
    "series", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("labels", Text, nullable=False, server_default=""),   # canonical JSON, "" for none
    UniqueConstraint("name", "labels", name="uq_series_name_labels"),
)

# The head: raw samples not yet sealed into chunks, one row per tick (all the
# samples sharing a timestamp, packed as (series_id, value) pairs by
# codec.pack_tick). A rowid table appended in time order: a tick's commit
# dirties the last page and rarely its parent, where a row per sample in a
# (ts, series_id) B-tree dirtied three or more pages per tick.
head = Table(
    "head", metadata,
    Column("id", Integer, primary_key=True),
    Column("ts", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

# Sealed data: one blob per (series, kind, hour). kind "raw" holds the samples,
# kind "1m" the per-minute count/min/max/sum of the same hour.
chunks = Table(
    "chunks", metadata,
    Column("id", Integer, primary_key=True),
    Column("series_id", Integer, nullable=False),
    Column("kind", Text, nullable=False),
    Column("start_ts", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    UniqueConstraint("series_id", "kind", "start_ts", name="uq_chunks_series_kind_start"),
)
Index("ix_chunks_kind_start", chunks.c.kind, chunks.c.start_ts)

rollup_hour = Table(
    "rollup_hour", metadata,
    Column("series_id", Integer, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("min", Float, nullable=False),
    Column("max", Float, nullable=False),
    Column("sum", Float, nullable=False),
    PrimaryKeyConstraint("series_id", "ts", name="pk_rollup_hour"),
    sqlite_with_rowid=False,
)
