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
    # CLOCK_BOOTTIME in ms when the row was written: a wall-clock step cannot fake
    # how long ago that was (ages in ``clock.py``). NULL in rows of older stores.
    Column("mono", BigInteger),
)

# Facts about the store that are not samples, one value per key: "boot_id", the
# kernel boot the head's monotonic stamps belong to (written with the first tick
# of each writer, in the same transaction).
store_meta = Table(
    "store_meta", metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

# Sealed data, compressed (codec.py), one blob per series, kind and period:
#   kind "raw": the samples of one hour (start_ts = the hour);
#   kind "1m":  per-minute count/min/max/sum of one hour (start_ts = the hour);
#   kind "1h":  per-hour count/min/max/sum of one UTC day (start_ts = midnight).
#
# Clustered by (kind, start_ts): each tier is pruned by time on its own schedule,
# so pruning deletes a contiguous run of pages and frees them whole. (A rowid
# table interleaving the tiers left each day's small 1h chunk alone on a page
# whose raw and 1m neighbours had been pruned: 38% of the file was empty space.)
chunks = Table(
    "chunks", metadata,
    Column("kind", Text, nullable=False),
    Column("start_ts", BigInteger, nullable=False),
    Column("series_id", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("kind", "start_ts", "series_id", name="pk_chunks"),
    sqlite_with_rowid=False,
)
# One series' chunks over a time range (history) without scanning every series'.
Index("ix_chunks_series", chunks.c.series_id, chunks.c.kind, chunks.c.start_ts)

# --- alerts (ishowd/alerts) ------------------------------------------------------
# Timestamps here are microseconds since the epoch, UTC.

# One row per (rule, series) that is pending or firing; inactive and resolved
# series have none. The daemon restores it at start, so a restart neither
# forgets a firing alert nor runs its hooks again.
alert_state = Table(
    "alert_state", metadata,
    Column("rule", Text, nullable=False),
    Column("labels", Text, nullable=False, server_default=""),   # the series' canonical labels
    Column("metric", Text, nullable=False),
    Column("state", Text, nullable=False),                       # pending | firing
    Column("severity", Text, nullable=False),
    Column("active_since", BigInteger, nullable=False),          # when the condition began to hold
    Column("fired_at", BigInteger),                              # when it fired (null while pending)
    Column("value", Float),                                      # the value that fired it (or started pending)
    Column("summary", Text, nullable=False, server_default=""),
    Column("event_id", Integer),                                 # its firing event in alert_events
    PrimaryKeyConstraint("rule", "labels", name="pk_alert_state"),
)

# Every firing and resolving, oldest first: the history `ishowctl alerts --all` shows.
alert_events = Table(
    "alert_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("ts", BigInteger, nullable=False),
    Column("rule", Text, nullable=False),
    Column("labels", Text, nullable=False, server_default=""),
    Column("metric", Text, nullable=False),
    Column("state", Text, nullable=False),                       # firing | resolved
    Column("severity", Text, nullable=False),
    Column("value", Float),
    Column("since", BigInteger, nullable=False),                 # when the alert fired
    Column("summary", Text, nullable=False, server_default=""),
)
Index("ix_alert_events_ts", alert_events.c.ts)

# Every run of a hook command: one row per attempt.
hook_runs = Table(
    "hook_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", Integer, nullable=False),
    Column("hook", Text, nullable=False),
    Column("attempt", Integer, nullable=False),                  # 1, then 2... for retries
    Column("started", BigInteger, nullable=False),
    Column("duration", Float, nullable=False),                   # seconds
    Column("status", Text, nullable=False),                      # ok | failed | timeout | error | dropped
    Column("exit_code", Integer),                                # null when it never exited by itself
    Column("output", Text, nullable=False, server_default=""),   # its first lines (stdout and stderr)
)
Index("ix_hook_runs_event", hook_runs.c.event_id)

# --- the backend log (issue 4) -------------------------------------------------------
# One row per finished synthesis parsed from the backend log. ts is UTC microseconds
# from the log line. The primary key is the uniqueness guard: the same event read
# twice (a rotated copy listed twice, say) is one record. Clustered by time.
rtf_records = Table(
    "rtf_records", metadata,
    Column("ts", BigInteger, nullable=False),
    Column("source", Text, nullable=False),              # "api" or "chat"
    Column("voice", Text, nullable=False),
    Column("elapsed_ms", Integer, nullable=False),
    Column("audio_seconds", Float, nullable=False),
    Column("rtf", Float),                                 # NULL when the audio was empty
    Column("engine", Text, nullable=False),
    Column("first_after_start", Integer, nullable=False, server_default="0"),
    Column("log", Text, nullable=False),                  # the configured log it came from
    PrimaryKeyConstraint("ts", "source", "voice", "elapsed_ms", name="pk_rtf_records"),
    sqlite_with_rowid=False,
)

# Where ingestion stands in each configured log: the file now at the path ("current")
# and, after a rename rotation, the renamed file still being written ("retired").
# Committed in the same transaction as the records read up to ``offset``.
log_positions = Table(
    "log_positions", metadata,
    Column("log", Text, nullable=False),                  # the configured path
    Column("role", Text, nullable=False),                 # "current" | "retired"
    Column("path", Text, nullable=False),                 # where the file was last found
    Column("dev", BigInteger, nullable=False),
    Column("inode", BigInteger, nullable=False),
    Column("fingerprint", Text, nullable=False),          # sha1 of the first fp_len bytes
    Column("fp_len", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),         # bytes consumed (always a line end)
    Column("skip_line", Integer, nullable=False, server_default="0"),      # inside an overlong line
    Column("first_pending", Integer, nullable=False, server_default="0"),  # next synthesis follows a start
    Column("size", BigInteger, nullable=False, server_default="0"),       # size when last read
    Column("changed", Float, nullable=False, server_default="0"),         # when it last grew (epoch s)
    PrimaryKeyConstraint("log", "role", name="pk_log_positions"),
)

# Running totals counted while ingesting (lines by kind, errors by level, HTTP
# requests by status class, backend starts), committed with the positions.
log_counters = Table(
    "log_counters", metadata,
    Column("name", Text, nullable=False),
    Column("label", Text, nullable=False, server_default=""),
    Column("value", BigInteger, nullable=False),
    PrimaryKeyConstraint("name", "label", name="pk_log_counters"),
)


# --- maintenance jobs (ishowd/jobs) -----------------------------------------------
# One row per run, inserted when it starts (status "running") and completed when it
# ends; a row still "running" when the daemon starts was cut short by a crash.
job_runs = Table(
    "job_runs", metadata,
    Column("id", Integer, primary_key=True),
    Column("job", Text, nullable=False),
    Column("started", BigInteger, nullable=False),                  # µs since the epoch
    Column("finished", BigInteger),
    Column("status", Text, nullable=False),                         # running | ok | failed | skipped | timeout
    Column("detail", Text, nullable=False, server_default=""),      # one line for people
    Column("result", Text, nullable=False, server_default="{}"),    # JSON
    Column("trigger", Text, nullable=False, server_default="schedule"),  # schedule | catch-up | operator
    Column("slot", BigInteger),                                     # the schedule slot it ran for (µs)
)
Index("ix_job_runs_job_started", job_runs.c.job, job_runs.c.started)


# --- the RTF histogram (issue 13) ----------------------------------------------------
# Cumulative over every record ever ingested (never pruned with rtf_records' rollups), so
# Prometheus sees a counter that a restart does not reset. One row per series and bucket:
# ``le`` is the bucket's upper bound (Inf for the last), ``count`` and ``rtf_sum`` are what
# fell in (the previous bound, le], not cumulative over the bounds. Moved in the transaction
# that inserts the records, by the rows actually inserted (a record read twice counts once).
rtf_histogram = Table(
    "rtf_histogram", metadata,
    Column("engine", Text, nullable=False),
    Column("voice", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("le", Float, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("rtf_sum", Float, nullable=False),
    PrimaryKeyConstraint("engine", "voice", "source", "le", name="pk_rtf_histogram"),
)
