"""The daemon's side of the store: the one writer.

Each tick is one small transaction appending to the time-clustered head
(``samples``), so it dirties the table's last page or two (the eMMC wears
with every page). Once an hour is at least an hour old it is *sealed*: per
series, its samples become one compressed ``raw`` chunk, one ``1m`` chunk
of per-minute rollups and one ``rollup_hour`` row, and leave the head, all
in one transaction. Retention then prunes each tier on its own schedule.

WAL mode with ``synchronous=NORMAL``: a commit is durable against a crash or
``kill -9`` of the daemon (the WAL is in the OS's hands), and only a
checkpoint fsyncs. Readers never block this writer.
"""
from __future__ import annotations

import logging
import math
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from sqlalchemy import and_, create_engine, delete, event, insert, select, update
from sqlalchemy.engine import Connection, Engine

from ..metrics import Sample, labels_key
from . import codec, rollup
from .schema import chunks, rollup_hour, samples, series

HOUR = 3600
# A reader that holds a snapshot for minutes keeps the WAL from being reset;
# once it lets go, the WAL is truncated back to this size after a checkpoint.
WAL_SIZE_LIMIT = 1 << 20


def _pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cur.close()


def make_engine(path: str) -> Engine:
    engine = create_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _pragmas)
    return engine


class Store:
    """The writer. Thread-safe: every write goes through one lock and one connection."""

    def __init__(self, path: str | os.PathLike, *, raw_retention: float = 14 * 86400,
                 minute_retention: float = 90 * 86400, hour_retention: float = math.inf):
        from .migrate import upgrade

        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        before, after = upgrade(self.path)
        if before != after:
            logging.getLogger("ishowd.store").info("%s: schema upgraded from %s to %s", self.path,
                                                   before or "empty", after)
        self.raw_retention = raw_retention
        self.minute_retention = minute_retention
        self.hour_retention = hour_retention
        self.engine = make_engine(self.path)
        self.conn: Connection = self.engine.connect()
        self.lock = threading.RLock()
        self._series: dict[tuple[str, str], int] = {}
        self._insert_sample = insert(samples).prefix_with("OR IGNORE")
        with self.transaction() as conn:
            for sid, name, labels in conn.execute(select(series.c.id, series.c.name, series.c.labels)):
                self._series[(name, labels)] = sid
            self._head_min = conn.execute(select(samples.c.ts).order_by(samples.c.ts).limit(1)).scalar()
        self._pruned_at = None

    # --- transactions -------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction; other modules (log ingestion, alerts) write through this."""
        with self.lock:
            with self.conn.begin():
                yield self.conn

    def series_id(self, conn: Connection, name: str, labels: str) -> int:
        key = (name, labels)
        sid = self._series.get(key)
        if sid is None:
            sid = conn.execute(insert(series).values(name=name, labels=labels)).inserted_primary_key[0]
            self._series[key] = sid
        return sid

    # --- the tick -------------------------------------------------------------

    def write(self, ts: float, batch: Iterable[Sample]) -> int:
        """Append one tick's samples (a sample's own ``ts`` wins over the tick's)."""
        with self.transaction() as conn:
            return self.write_in(conn, ts, batch)

    def write_in(self, conn: Connection, ts: float, batch: Iterable[Sample]) -> int:
        rows, tick = [], int(ts)
        for s in batch:
            sid = self.series_id(conn, s.metric.name, labels_key(s.labels))
            rows.append({"ts": tick if s.ts is None else int(s.ts), "series_id": sid, "value": float(s.value)})
        if rows:
            conn.execute(self._insert_sample, rows)
            low = min(r["ts"] for r in rows)
            if self._head_min is None or low < self._head_min:
                self._head_min = low
        return len(rows)

    def maintain(self, now: float) -> int:
        """Seal hours that ended at least an hour ago, then prune (hourly). Returns hours sealed."""
        sealed = 0
        cutoff = (int(now) // HOUR - 1) * HOUR
        while self._head_min is not None and self._head_min < cutoff:
            self._seal_hour(self._head_min - self._head_min % HOUR)
            sealed += 1
        hour = int(now) // HOUR
        if sealed or self._pruned_at != hour:
            self.prune(now)
            self._pruned_at = hour
        return sealed

    # --- sealing --------------------------------------------------------------

    def _seal_hour(self, start: int) -> None:
        end = start + HOUR
        with self.transaction() as conn:
            rows = conn.execute(
                select(samples.c.series_id, samples.c.ts, samples.c.value)
                .where(and_(samples.c.ts >= start, samples.c.ts < end))
                .order_by(samples.c.series_id, samples.c.ts)).all()
            by_series: dict[int, tuple[list[int], list[float]]] = {}
            for sid, t, v in rows:
                ts_list, vals = by_series.setdefault(sid, ([], []))
                ts_list.append(t)
                vals.append(v)
            for sid, (ts_list, vals) in by_series.items():
                self._seal_series_hour(conn, sid, start, ts_list, vals)
            conn.execute(delete(samples).where(and_(samples.c.ts >= start, samples.c.ts < end)))
            self._head_min = conn.execute(select(samples.c.ts).order_by(samples.c.ts).limit(1)).scalar()

    def _seal_series_hour(self, conn: Connection, sid: int, start: int,
                          ts_list: Sequence[int], vals: Sequence[float]) -> None:
        """Fold one series' samples of one hour into its chunks and rollups.

        Merges with what is already sealed for that hour (samples stamped in
        the past after the clock stepped back land here), keeping the first
        value for a timestamp seen twice, and combining rollups additively so
        nothing already summarised is lost even after its raw chunk was pruned.
        """
        existing = conn.execute(select(chunks.c.id, chunks.c.data).where(and_(
            chunks.c.series_id == sid, chunks.c.kind == "raw", chunks.c.start_ts == start))).first()
        new_ts, new_vals = list(ts_list), list(vals)
        if existing is not None:
            old_ts, (old_vals,) = codec.decode(existing.data)
            seen = set(old_ts)
            keep = [(t, v) for t, v in zip(new_ts, new_vals) if t not in seen]
            if not keep:
                return
            merged = sorted(list(zip(old_ts, old_vals)) + keep, key=lambda tv: tv[0])
            new_ts, new_vals = [t for t, _ in keep], [v for _, v in keep]
            all_ts, all_vals = [t for t, _ in merged], [v for _, v in merged]
            conn.execute(update(chunks).where(chunks.c.id == existing.id).values(
                count=len(all_ts), data=codec.encode(all_ts, [all_vals])))
        else:
            conn.execute(insert(chunks).values(series_id=sid, kind="raw", start_ts=start,
                                               count=len(new_ts), data=codec.encode(new_ts, [new_vals])))
        # per-minute rollups, combined with any already sealed for this hour
        minutes = rollup.bucketize(new_ts, new_vals, 60)
        old_m = conn.execute(select(chunks.c.id, chunks.c.data).where(and_(
            chunks.c.series_id == sid, chunks.c.kind == "1m", chunks.c.start_ts == start))).first()
        if old_m is not None:
            m_ts, cols = codec.decode(old_m.data)
            rollup.merge_buckets(minutes, m_ts, zip(*cols), 60)
        order = sorted(minutes)
        cols = [[float(minutes[m][i]) for m in order] for i in range(4)]
        blob = codec.encode(order, cols)
        if old_m is not None:
            conn.execute(update(chunks).where(chunks.c.id == old_m.id).values(count=len(order), data=blob))
        else:
            conn.execute(insert(chunks).values(series_id=sid, kind="1m", start_ts=start, count=len(order), data=blob))
        # the hour
        agg = rollup.of_values(new_vals)
        old_h = conn.execute(select(rollup_hour.c.count, rollup_hour.c.min, rollup_hour.c.max, rollup_hour.c.sum)
                             .where(and_(rollup_hour.c.series_id == sid, rollup_hour.c.ts == start))).first()
        if old_h is not None:
            agg = rollup.combine(list(old_h), agg)
            conn.execute(update(rollup_hour).where(and_(rollup_hour.c.series_id == sid, rollup_hour.c.ts == start))
                         .values(count=agg[0], min=agg[1], max=agg[2], sum=agg[3]))
        else:
            conn.execute(insert(rollup_hour).values(series_id=sid, ts=start, count=agg[0], min=agg[1],
                                                    max=agg[2], sum=agg[3]))

    def prune(self, now: float) -> None:
        with self.transaction() as conn:
            conn.execute(delete(chunks).where(and_(chunks.c.kind == "raw", chunks.c.start_ts < now - self.raw_retention)))
            conn.execute(delete(chunks).where(and_(chunks.c.kind == "1m", chunks.c.start_ts < now - self.minute_retention)))
            if math.isfinite(self.hour_retention):
                conn.execute(delete(rollup_hour).where(rollup_hour.c.ts < now - self.hour_retention))

    # --- bulk API (benchmarks, imports) ---------------------------------------------

    def bulk_load(self, name: str, labels: dict, ts_list: Sequence[int], vals: Sequence[float]) -> None:
        """Seal historical samples of one series directly, hour by hour (ts ascending)."""
        with self.transaction() as conn:
            sid = self.series_id(conn, name, labels_key(labels))
            i, n = 0, len(ts_list)
            while i < n:
                start = ts_list[i] - ts_list[i] % HOUR
                j = i
                while j < n and ts_list[j] < start + HOUR:
                    j += 1
                self._seal_series_hour(conn, sid, start, ts_list[i:j], vals[i:j])
                i = j

    def checkpoint(self) -> None:
        with self.lock:
            self.conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self.lock:
            try:
                self.conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:  # closing must not fail on a busy reader
                pass
            self.conn.close()
            self.engine.dispose()
