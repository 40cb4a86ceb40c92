"""The daemon's side of the store: the one writer.

Each tick is one small transaction appending to the time-clustered head
(``head``, one row per tick), so it dirties the table's last page or two (the eMMC wears
with every page). Once an hour is at least an hour old it is *sealed*: per
series, its samples become one compressed ``raw`` chunk, one ``1m`` chunk
of per-minute rollups, and one row of its day's ``1h`` chunk, and leave the head, all
in one transaction. Retention then prunes each tier on its own schedule.
Samples stamped in the past (log ingestion catching up on a backlog) go
through ``write_past``, which puts each straight into the tier its age
belongs to.

It runs the SQL that ``statements.py`` compiles from the SQLAlchemy schema
(``sql.py``) through the stdlib ``sqlite3``: the daemon never loads
SQLAlchemy, which alone would cost more memory than the daemon may use.

WAL mode with ``synchronous=NORMAL``: a commit is durable against a crash or
``kill -9`` of the daemon (the WAL is in the OS's hands), and only a
checkpoint fsyncs. Readers never block this writer.
"""
from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from array import array
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from ..metrics import Metric, Sample, labels_key
from .. import clock
from . import codec, rollup, sql
from .errors import StoreError
from .migrate import ensure_current, inspect

log = logging.getLogger("ishowd.store")

HOUR = 3600
DAY = 86400
# A reader that holds a snapshot for minutes keeps the WAL from being reset;
# once it lets go, the WAL is truncated back to this size after a checkpoint.
WAL_SIZE_LIMIT = 1 << 20
# Writes in a row, by each writer whose writes failed, that end an outage (``Store.write_succeeded``).
RECOVERED_AFTER = 3


def _first_per_second(stamps: array, values: array) -> tuple[array, array]:
    """Time order, the first value written for a second kept (a stable sort keeps write order)."""
    n = len(stamps)
    if all(stamps[i] < stamps[i + 1] for i in range(n - 1)):
        return stamps, values               # the usual case: one tick a second, in order
    ts_out, val_out = array("q"), array("d")
    for i in sorted(range(n), key=stamps.__getitem__):
        if not ts_out or stamps[i] != ts_out[-1]:
            ts_out.append(stamps[i])
            val_out.append(values[i])
    return ts_out, val_out


def _lock_writer(path: str):
    """Hold ``<store>.lock`` (flock) for as long as this writer lives: one writer per store.

    A second ``ishowd run`` on the same store (a terminal beside the systemd
    unit) would interleave ticks and seal hours twice; it is refused instead.
    The kernel drops the lock when the process dies, ``kill -9`` included.
    """
    import fcntl

    try:
        f = open(path + ".lock", "a+")
    except OSError as exc:  # a read-only directory says so here first
        raise StoreError(f"{path}: cannot create {path}.lock ({exc.strerror}): ishowd keeps its lock, -wal "
                         f"and -shm files beside the store; make {os.path.dirname(os.path.abspath(path))} "
                         "writable or set [storage] path") from None
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise StoreError(f"{path}: another ishowd (pid {holder}) is already writing to this store; "
                         "stop it first (systemctl stop ishowd) or point [storage] path elsewhere") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def connect(path: str) -> sqlite3.Connection:
    """The writer's connection: autocommit mode, transactions opened explicitly."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    conn.execute("PRAGMA cache_size=-512")  # KiB: the daemon's working set is the head and a few chunks
    return conn


class Store:
    """The writer. Thread-safe: every write goes through one lock and one connection."""

    def __init__(self, path: str | os.PathLike, *, raw_retention: float = 14 * 86400,
                 minute_retention: float = 90 * 86400, hour_retention: float = math.inf,
                 procfs_root: str = "/proc"):
        self.path = str(path)
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create its directory ({exc.strerror}): create it or set "
                             "[storage] path") from None
        # before the lock file: nothing is left beside a file that turns out not to be a store
        inspect(self.path, thorough=True)
        self._lock_file = _lock_writer(self.path)
        before, after = ensure_current(self.path)
        if before != after:
            log.info("%s: schema upgraded from %s to %s", self.path, before or "empty", after)
        self.raw_retention = raw_retention
        self.minute_retention = minute_retention
        self.hour_retention = hour_retention
        self.db = connect(self.path)
        st = os.stat(self.path)
        self._file = (st.st_dev, st.st_ino)  # the file this writer has open: see ``moved``
        self._outage: Optional[_Outage] = None
        self.lock = threading.RLock()
        self._series: dict[tuple[str, str], int] = {
            (name, labels): sid for sid, name, labels in self.db.execute(sql.SERIES_ALL)}
        # (name, label items in the sample's order) -> series id: a tick's samples found without
        # encoding their labels as JSON each time
        self._sid_of: dict[tuple, int] = {}
        self._head_min = self.db.execute(sql.HEAD_MIN_TS).fetchone()[0]
        # The kernel boot the head's monotonic stamps belong to: recorded with this
        # writer's first tick, in its transaction, so no reader pairs a stamp of one
        # boot with the id of another.
        self._boot = clock.boot_id(procfs_root)
        self._boot_recorded = False
        # The newest hour sealed, and hours at or before it that the head holds
        # rows of again (the clock stepped back into them): see ``maintain``.
        self._sealed_top = self.db.execute(sql.CHUNKS_NEWEST_RAW).fetchone()[0]
        self._late_hours: set[int] = set()
        if self._sealed_top is not None:
            self._late_hours = {t for (t,) in self.db.execute(sql.HEAD_HOURS_UNTIL,
                                                                {"until": self._sealed_top + HOUR})}
        self._pruned_at = None
        # write_past's label dicts by metric and label values: one dict per series, not per sample
        self._label_sets: dict[str, dict[tuple, dict]] = {}
        # Called with each sample write's ``{ts: [(series_id, value), ...]}`` inside its
        # transaction; must be cheap and must not raise. Alert evaluation keeps its
        # windows current from these instead of re-reading the store after every tick.
        self.observers: list = []

    # --- transactions -------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE .. COMMIT, ROLLBACK on error).

        Other modules (log ingestion, alerts) write through this, with SQL from
        ``sql.py``, so what they write commits atomically with what they read.
        """
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                # after a full disk or an I/O error SQLite has rolled back already (or, when
                # COMMIT failed, may not have)
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                self._boot_recorded = False  # it may have been in what was rolled back
                self._forget_uncommitted()
                raise

    def series_id(self, conn: sqlite3.Connection, name: str, labels: str) -> int:
        key = (name, labels)
        sid = self._series.get(key)
        if sid is None:
            sid = conn.execute(sql.SERIES_INSERT, {"name": name, "labels": labels}).lastrowid
            self._series[key] = sid
        return sid

    # --- the tick -------------------------------------------------------------

    def write(self, ts: float, batch: Iterable[Sample]) -> int:
        """Append one tick's samples (a sample's own ``ts`` wins over the tick's)."""
        with self.transaction() as conn:
            return self.write_in(conn, ts, batch)

    def write_in(self, conn: sqlite3.Connection, ts: float, batch: Iterable[Sample]) -> int:
        by_ts: dict[int, list[tuple[int, float]]] = {}
        tick, n = int(ts), 0
        sid_of = self._sid_of
        this_tick = None       # by_ts[tick], looked up once
        for s in batch:
            labels = s.labels
            key = (s.metric.name, tuple(labels.items()) if labels else ())
            sid = sid_of.get(key)
            if sid is None:
                sid = sid_of[key] = self.series_id(conn, s.metric.name, labels_key(labels))
            if s.ts is None:
                if this_tick is None:
                    this_tick = by_ts.setdefault(tick, [])
                this_tick.append((sid, float(s.value)))
            else:
                by_ts.setdefault(int(s.ts), []).append((sid, float(s.value)))
            n += 1
        mono = clock.boottime_ms()
        for t, pairs in by_ts.items():
            conn.execute(sql.HEAD_INSERT, {"ts": t, "data": codec.pack_tick(pairs), "mono": mono})
            if self._head_min is None or t < self._head_min:
                self._head_min = t
            if self._sealed_top is not None and t < self._sealed_top + HOUR:
                self._late_hours.add(t - t % HOUR)
        if by_ts and not self._boot_recorded and self._boot:
            conn.execute(sql.META_PUT, {"key": "boot_id", "value": self._boot})
            self._boot_recorded = True
        if by_ts:
            # a snapshot: a reload adds and removes observers from other threads
            for observe in tuple(self.observers):
                observe(by_ts)
        return n

    def maintain(self, now: float) -> int:
        """Seal hours that ended at least an hour ago, then prune (hourly). Returns hours sealed.

        An hour sealed already that the head holds rows of again (the clock
        stepped back into it) is sealed again as soon as it has ended, not an
        hour later: until then readers merge those rows with its chunk.
        """
        sealed = 0
        cutoff = (int(now) // HOUR - 1) * HOUR
        while self._head_min is not None and self._head_min < cutoff:
            self._seal_hour(self._head_min - self._head_min % HOUR)
            sealed += 1
        for hour in sorted(h for h in self._late_hours if h + HOUR <= now):
            self._seal_hour(hour)
            sealed += 1
        hour = int(now) // HOUR
        if sealed or self._pruned_at != hour:
            self.prune(now)
            self._pruned_at = hour
        return sealed

    # --- sealing --------------------------------------------------------------

    def _seal_hour(self, start: int) -> None:
        rng = {"since": start, "until": start + HOUR}
        with self.transaction() as conn:
            # Per series, its stamps and values in write order, as typed arrays: a dict per series
            # held a Python int and float object per sample, several MB an hour that the allocator
            # then kept as the daemon's high-water mark.
            by_series: dict[int, tuple[array, array]] = {}
            for ts, blob in conn.execute(sql.HEAD_RANGE, rng):
                for sid, value in codec.unpack_tick(blob):
                    col = by_series.get(sid)
                    if col is None:
                        col = by_series[sid] = (array("q"), array("d"))
                    col[0].append(ts)
                    col[1].append(value)
            for sid, (stamps, values) in by_series.items():
                ts_list, vals = _first_per_second(stamps, values)
                self._seal_series_hour(conn, sid, start, ts_list, vals)
            conn.execute(sql.HEAD_DELETE_RANGE, rng)
            self._head_min = conn.execute(sql.HEAD_MIN_TS).fetchone()[0]
        self._late_hours.discard(start)
        if self._sealed_top is None or start > self._sealed_top:
            self._sealed_top = start

    def _seal_series_hour(self, conn: sqlite3.Connection, sid: int, start: int,
                          ts_list: Sequence[int], vals: Sequence[float]) -> None:
        """Fold one series' samples of one hour into its chunks and rollups.

        Merges with what is already sealed for that hour (samples stamped in
        the past after the clock stepped back land here), keeping the first
        value for a timestamp seen twice, and combining rollups additively so
        nothing already summarised is lost even after its raw chunk was pruned.
        """
        key = {"series_id": sid, "kind": "raw", "start_ts": start}
        existing = conn.execute(sql.CHUNK_GET, key).fetchone()
        new_ts, new_vals = list(ts_list), list(vals)
        if existing is not None:
            old_ts, (old_vals,) = codec.decode(existing[0])
            seen = set(old_ts)
            keep = [(t, v) for t, v in zip(new_ts, new_vals) if t not in seen]
            if not keep:
                return
            merged = sorted(list(zip(old_ts, old_vals)) + keep, key=lambda tv: tv[0])
            new_ts, new_vals = [t for t, _ in keep], [v for _, v in keep]
            conn.execute(sql.CHUNK_UPDATE, dict(key, count=len(merged),
                                                data=codec.encode([t for t, _ in merged], [[v for _, v in merged]])))
        else:
            conn.execute(sql.CHUNK_INSERT, dict(key, count=len(new_ts), data=codec.encode(new_ts, [new_vals])))
        # per-minute rollups of this hour, per-hour rollups of this day
        self._merge_rollups(conn, sid, "1m", start, rollup.bucketize(new_ts, new_vals, 60))
        self._merge_rollups(conn, sid, "1h", start - start % DAY, {start: rollup.of_values(new_vals)})

    def _merge_rollups(self, conn: sqlite3.Connection, sid: int, kind: str, period: int,
                       aggs: dict[int, list]) -> None:
        """Combine bucket aggregates into the rollup chunk of ``kind`` starting at ``period``."""
        key = {"series_id": sid, "kind": kind, "start_ts": period}
        old = conn.execute(sql.CHUNK_GET, key).fetchone()
        if old is not None:
            ts, cols = codec.decode(old[0])
            aggs = rollup.merge_buckets(aggs, ts, zip(*cols), 1)
        order = sorted(aggs)
        blob = codec.encode(order, [[float(aggs[t][i]) for t in order] for i in range(4)])
        if old is not None:
            conn.execute(sql.CHUNK_UPDATE, dict(key, count=len(order), data=blob))
        else:
            conn.execute(sql.CHUNK_INSERT, dict(key, count=len(order), data=blob))

    def prune(self, now: float) -> None:
        with self.transaction() as conn:
            conn.execute(sql.CHUNKS_PRUNE, {"kind": "raw", "before": now - self.raw_retention})
            conn.execute(sql.CHUNKS_PRUNE, {"kind": "1m", "before": now - self.minute_retention})
            if math.isfinite(self.hour_retention):
                # a day's chunk goes once its last hour is past retention
                conn.execute(sql.CHUNKS_PRUNE, {"kind": "1h", "before": now - self.hour_retention - DAY + HOUR})

    # --- bulk API (benchmarks, imports) ---------------------------------------------

    def bulk_load(self, name: str, labels: dict, ts_list: Sequence[int], vals: Sequence[float]) -> None:
        """Seal historical samples of one series directly, hour by hour (ts ascending)."""
        with self.transaction() as conn:
            self.seal_in(conn, name, labels, ts_list, vals)

    # --- past samples within a caller's transaction (log ingestion catching up) -------

    def write_past(self, conn: sqlite3.Connection, metric: Metric, samples: Iterable[Sequence], *,
                   hours: Optional[dict] = None, newest_us: Optional[int] = None,
                   now: Optional[float] = None) -> None:
        """Per-event samples stamped with their own times, each into the tier that keeps its age.

        ``samples``: ``(ts_us, value, *label_values)``, the time in µs and the
        label values in ``metric.labels``' order; a ``None`` value is no sample.
        Within the transaction the caller holds (``conn``), by age against ``now``:

        * this hour and the last: the head, like any tick's (a time in the
          future, a clock set wrong, is taken as ``now``: the head must not run
          ahead of the ticks);
        * older, within the minute rollups' retention: sealed at once
          (``seal_in``), the first value of a second winning;
        * older still: the hourly rollups only (``fold_hours``); the raw and
          per-minute tiers would prune them at once.

        So a backlog caught up on leaves no later tick hours of it to seal.
        ``hours`` and ``newest_us``: the same samples' hourly aggregates,
        ``{(*label_values, hour_start): [count, min, max, sum]}``, and the newest
        one's time (µs), where the caller has them: when even the newest is
        older than the minute retention, ``hours`` is folded in as it is and
        ``samples`` is not read.
        """
        now = time.time() if now is None else now
        cutoff_us = (int(now) // HOUR - 1) * HOUR * 1_000_000
        sealed_from_us = (now - self.minute_retention) * 1e6
        names = metric.labels
        label_sets = self._label_sets.setdefault(metric.name, {})
        recent = []
        sealed: dict[tuple, dict[int, float]] = {}
        by_hour: dict[tuple, list] = {}
        if hours is not None and newest_us is not None and newest_us < sealed_from_us:
            by_hour, samples = hours, ()
        for s in samples:
            ts_us, v = s[0], s[1]
            if v is None:
                continue
            values = s[2:]
            if ts_us >= cutoff_us:
                labels = label_sets.get(values)
                if labels is None:
                    labels = label_sets[values] = dict(zip(names, values))
                recent.append(Sample(metric, v, labels, ts=min(ts_us / 1e6, now)))
            elif ts_us >= sealed_from_us:
                sealed.setdefault(values, {}).setdefault(ts_us // 1_000_000, v)
            else:
                hk = values + (ts_us // 3_600_000_000 * HOUR,)
                agg = by_hour.get(hk)
                if agg is None:
                    by_hour[hk] = [1, v, v, v]
                else:
                    rollup.add(agg, 1, v, v, v)
        if recent:
            self.write_in(conn, now, recent)
        for values, by_ts in sealed.items():
            ts_list = sorted(by_ts)
            self.seal_in(conn, metric.name, dict(zip(names, values)), ts_list, [by_ts[t] for t in ts_list])
        by_series: dict[tuple, dict[int, list]] = {}
        for hk, agg in by_hour.items():
            by_series.setdefault(hk[:-1], {})[hk[-1]] = agg
        for values, aggs in by_series.items():
            self.fold_hours(conn, metric.name, dict(zip(names, values)), aggs)

    def seal_in(self, conn: sqlite3.Connection, name: str, labels: dict, ts_list: Sequence[int],
                vals: Sequence[float]) -> None:
        """``bulk_load`` within a transaction the caller holds: samples of hours already past sealing.

        Log ingestion catching up on a backlog writes its per-request samples here
        rather than into the head, so no later tick has hundreds of hours to seal.
        """
        sid = self.series_id(conn, name, labels_key(labels))
        i, n = 0, len(ts_list)
        while i < n:
            start = ts_list[i] - ts_list[i] % HOUR
            j = i
            while j < n and ts_list[j] < start + HOUR:
                j += 1
            self._seal_series_hour(conn, sid, start, ts_list[i:j], vals[i:j])
            i = j

    def fold_hours(self, conn: sqlite3.Connection, name: str, labels: dict, hours: dict[int, list]) -> None:
        """Hourly aggregates ([count, min, max, sum] per hour) of samples older than the raw and
        minute retentions, straight into the series' 1h rollups (the only tier that keeps them)."""
        sid = self.series_id(conn, name, labels_key(labels))
        by_day: dict[int, dict[int, list]] = {}
        for hour, agg in hours.items():
            by_day.setdefault(hour - hour % DAY, {})[hour] = agg
        for day, aggs in by_day.items():
            self._merge_rollups(conn, sid, "1h", day, aggs)

    def checkpoint(self) -> None:
        with self.lock:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # --- when writes fail (a full disk, an I/O error) or the file is taken away -------------

    def _forget_uncommitted(self) -> None:
        """After a rollback: reload what the transaction may have cached. A series it inserted is
        not in the store, and the next new series would be given its id."""
        self._sid_of = {}
        try:
            self._series = {(name, labels): sid for sid, name, labels in self.db.execute(sql.SERIES_ALL)}
            self._head_min = self.db.execute(sql.HEAD_MIN_TS).fetchone()[0]
        except sqlite3.Error:
            # With nothing cached a series is found by inserting it, which the unique (name, labels)
            # refuses for one already stored: that write fails (and reloads again), never takes a
            # wrong id.
            self._series = {}

    @property
    def writes_failing(self) -> bool:
        return self._outage is not None

    def write_failed(self, who: str, exc: BaseException, *, tick_lost: bool = False) -> None:
        """``who`` (the tick, a task) could not write, the disk or the file to blame (a full disk, an
        I/O error); its transaction was rolled back and it tries again on its next run. Logged once
        per outage and once for each other cause, not once per try; ``write_succeeded`` ends it."""
        cause = str(exc)
        with self.lock:
            outage = self._outage
            if outage is None:
                outage = self._outage = _Outage()
                log.error("store writes failing: %s (%s; %s); retrying each tick; will say when it recovers",
                          cause, who, self._room())
            elif cause not in outage.causes:
                log.error("store writes still failing, now: %s (%s; %s)", cause, who, self._room())
            outage.causes.add(cause)
            outage.failing[who] = 0
            outage.failed.add(who)
            outage.ticks_lost += tick_lost

    def write_succeeded(self, who: str) -> None:
        """``who`` wrote what it had. The outage is over (said once) when every one that failed has
        done so ``RECOVERED_AFTER`` times in a row and the disk has room for the WAL to grow again;
        or, room or not, ten times that. On a disk all but full some writes pass between those that
        fail (each checkpoint frees a little): no recovery to announce."""
        if self._outage is None:
            return
        with self.lock:
            outage = self._outage
            if outage is None or who not in outage.failing:
                return
            outage.failing[who] += 1
            streak = min(outage.failing.values())
            if streak < RECOVERED_AFTER or streak < 10 * RECOVERED_AFTER and self._free() < WAL_SIZE_LIMIT:
                return
            self._outage = None
        lost = outage.ticks_lost
        retried = sorted(outage.failed - {"tick"})
        log.warning("store writes recovered after %s: %d tick%s lost%s", _duration(time.monotonic() - outage.since),
                    lost, "" if lost == 1 else "s",
                    f"; what {', '.join(retried)} could not write then is written now" if retried else "")

    def shrink_wal(self) -> None:
        """Before a write is tried again: checkpoint the WAL into the store and truncate it, so space
        freed on the disk takes the pages waiting in the WAL instead of the WAL growing into it."""
        try:
            self.checkpoint()
        except sqlite3.Error:  # still no room: the next try checkpoints again
            pass

    def _free(self) -> int:
        try:
            fs = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
        except OSError:
            return 0
        return fs.f_bavail * fs.f_frsize

    def _room(self) -> str:
        """The store's file system and WAL, for a line that says why writes fail."""
        from ..units import humanize
        where = os.path.dirname(os.path.abspath(self.path))
        try:
            fs = os.statvfs(where)
            wal = os.stat(self.path + "-wal").st_size
        except OSError:
            return where
        return (f"{where}: {humanize(fs.f_bavail * fs.f_frsize, 'bytes')} free of "
                f"{humanize(fs.f_blocks * fs.f_frsize, 'bytes')}, WAL {humanize(wal, 'bytes')}")

    def moved(self) -> Optional[str]:
        """Why ``path`` no longer names the file this writer has open, or None. Writing on would go
        where no reader looks, and a deleted file's space comes back only when ishowd exits."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return f"{self.path} was deleted or renamed while ishowd was writing it"
        except OSError:
            return None  # cannot tell (an I/O error): the writes say what is wrong
        if (st.st_dev, st.st_ino) != self._file:
            return f"{self.path} was replaced by another file while ishowd was writing it"
        return None

    def close(self) -> None:
        # SQLite neither checkpoints nor removes the WAL of a file renamed or deleted under it: its
        # frames would wait at the old name, and a database later moved there (a backup put back)
        # would take them as its own. So a moved store's WAL is checkpointed into it and emptied.
        mode = "TRUNCATE" if self.moved() else "PASSIVE"
        with self.lock:
            try:
                self.db.execute(f"PRAGMA wal_checkpoint({mode})")
            except sqlite3.Error:  # closing must not fail on a busy reader
                pass
            self.db.close()
            self._lock_file.close()  # releases the writer lock


class _Outage:
    """Store writes failing: since when, who failed (and how many writes it has made since its
    last failure), the causes said."""

    def __init__(self) -> None:
        self.since = time.monotonic()
        self.failing: dict[str, int] = {}
        self.failed: set[str] = set()
        self.causes: set[str] = set()
        self.ticks_lost = 0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def open_store(config, **kwargs) -> Store:
    """The writer for ``config``'s store, with its retention (the daemon, or a job run with no daemon up)."""
    from ..paths import store_path
    from ..settings import hour_retention_seconds
    st = config.storage
    return Store(store_path(config), raw_retention=st.raw_retention, minute_retention=st.minute_retention,
                 hour_retention=hour_retention_seconds(config), procfs_root=config.host.procfs_root, **kwargs)
