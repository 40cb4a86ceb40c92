"""The CLI's side of the store: read-only, stdlib ``sqlite3``, fast to start.

Opens the file with ``mode=ro``: a reader never writes and never blocks the
daemon (WAL). The table layout it reads is ``schema.py``'s; the queries are
all here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, NamedTuple

from . import codec, rollup, sql
from .migrate import open_for_reading

if TYPE_CHECKING:  # pragma: no cover
    from .. import clock

HOUR = 3600
DAY = 86400


class Series(NamedTuple):
    id: int
    name: str
    labels: dict


class Latest(NamedTuple):
    name: str
    labels: dict
    ts: int
    value: float

    @property
    def labels_text(self) -> str:
        """The stored form of the labels (canonical JSON, "" for none)."""
        from ..metrics import labels_key
        return labels_key(self.labels)


class Bucket(NamedTuple):
    ts: int
    labels: dict
    count: int
    min: float
    max: float
    mean: float


class Reader:
    def __init__(self, path: str):
        self.path = path
        self.conn, rev = open_for_reading(path)
        self.revision = rev

    def close(self) -> None:
        self.conn.close()

    # --- series ---------------------------------------------------------------

    def series(self, name: str | None = None, match: Mapping[str, str] | None = None) -> list[Series]:
        import json
        rows = self.conn.execute(sql.SERIES_BY_NAME, {"name": name}) if name else self.conn.execute(sql.SERIES_ALL)
        out = []
        for sid, n, labels in rows:
            lab = json.loads(labels) if labels else {}
            if match and any(lab.get(k) != v for k, v in match.items()):
                continue
            out.append(Series(sid, n, lab))
        return out

    def first_ts(self) -> int | None:
        """The stamp of the store's oldest sample; to the hour once its raw samples are pruned (the
        hourly rollups, kept forever, hold no finer time). None for a store without samples."""
        stamps = [self.conn.execute(sql.HEAD_MIN_TS).fetchone()[0]]
        for sid in self._names():
            for kind in ("raw", "1h"):
                row = self.conn.execute(sql.CHUNKS_RANGE, {"series_id": sid, "kind": kind, "since": 0,
                                                           "until": 1 << 62}).fetchone()
                if row is not None:
                    stamps.append(codec.decode(row[0])[0][0])
        stamps = [t for t in stamps if t is not None]
        return min(stamps) if stamps else None

    def metric_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute(sql.METRIC_NAMES)]

    def _names(self) -> dict[int, tuple[str, dict]]:
        import json
        return {sid: (name, json.loads(labels) if labels else {}) for sid, name, labels in
                self.conn.execute(sql.SERIES_ALL)}

    def head(self, since: int, until: int | None = None):
        """Head rows in [since, until) as (ts, [(series_id, value), ...]), in write order."""
        rows = self.conn.execute(sql.HEAD_SINCE, {"since": since}) if until is None else \
            self.conn.execute(sql.HEAD_RANGE, {"since": since, "until": until})
        for ts, blob in rows:
            yield ts, codec.unpack_tick(blob)

    # --- latest values ------------------------------------------------------------

    def newest_write(self) -> tuple[int, int | None] | None:
        """(wall stamp, boottime ms) of the daemon's newest write, in write order: after the
        clock stepped back, rows stamped during the step are newer by stamp, not by write."""
        if self.revision < "0004":  # the daemon has not upgraded this store yet: no monotonic stamps
            ts = self.conn.execute(sql.HEAD_MAX_TS).fetchone()[0]
            return None if ts is None else (ts, None)
        return self.conn.execute(sql.HEAD_NEWEST_WRITE).fetchone()

    def last_ts(self) -> int | None:
        """The wall-clock stamp of the daemon's newest write."""
        row = self.newest_write()
        return None if row is None else row[0]

    def age(self, now: float, procfs_root: str = "/proc") -> "clock.Age | None":
        """How long ago the daemon last wrote, from the monotonic clock where it can tell (``clock.py``)."""
        from .. import clock
        row = self.newest_write()
        if row is None:
            return None
        return clock.age_of(row[0], row[1], self.meta("boot_id"), now, procfs_root)

    def meta(self, key: str) -> str | None:
        if self.revision < "0004":
            return None
        row = self.conn.execute(sql.META_GET, {"key": key}).fetchone()
        return None if row is None else row[0]

    def current(self, window: float) -> list[Latest]:
        """The newest sample of each series stamped in the ``window`` seconds up to the newest
        write: rows stamped later (during a clock step since undone) are not current."""
        last = self.last_ts()
        return [] if last is None else self.latest(int(last - window), last + 1)

    def latest(self, since: int, until: int | None = None) -> list[Latest]:
        """The newest sample of each series stamped in [since, until)."""
        newest: dict[int, tuple[int, float]] = {}
        for ts, pairs in self.head(since, until):
            for sid, value in pairs:
                have = newest.get(sid)
                if have is None or ts >= have[0]:
                    newest[sid] = (ts, value)
        names = self._names()
        out = [Latest(*names[sid], ts, value) for sid, (ts, value) in newest.items()]
        out.sort(key=lambda r: (r.name, sorted(r.labels.items())))
        return out

    # --- history ---------------------------------------------------------------------

    def raw(self, series_id: int, since: int, until: int) -> tuple[list[int], list[float]]:
        """Raw samples of one series in [since, until), oldest first (chunks, then the head)."""
        pairs: list[tuple[int, float]] = []
        for (blob,) in self.conn.execute(sql.CHUNKS_RANGE, {"series_id": series_id, "kind": "raw",
                                                            "since": since - since % HOUR, "until": until}):
            ts, (vals,) = codec.decode(blob)
            pairs += [(t, v) for t, v in zip(ts, vals) if since <= t < until]
        pairs += self._head_values(series_id, since, until)
        pairs.sort(key=lambda p: p[0])
        return [p[0] for p in pairs], [p[1] for p in pairs]

    @staticmethod
    def tier_for(step: int) -> str:
        """The coarsest stored data that answers buckets of ``step`` seconds exactly."""
        if step % HOUR == 0:
            return "1h"
        if step % 60 == 0:
            return "1m"
        return "raw"

    def buckets(self, series_id: int, since: int, until: int, step: int) -> dict[int, list]:
        """Aggregates per step-aligned bucket (UTC multiples of ``step``) overlapping [since, until).

        Buckets are whole at both ends: the first starts at ``since`` rounded
        down to the step, the last is the one holding ``until - 1``, entire.
        Sealed hours come from the coarsest tier that divides the step; the head
        (the last hour or two, not yet sealed) is aggregated from raw samples.
        """
        start = since - since % step
        until = until + (-until) % step
        tier = self.tier_for(step)
        out: dict[int, list] = {}
        if tier in ("1h", "1m"):
            period = DAY if tier == "1h" else HOUR  # a 1h chunk holds a day, a 1m chunk an hour
            for (blob,) in self.conn.execute(sql.CHUNKS_RANGE, {"series_id": series_id, "kind": tier,
                                                                "since": start - start % period, "until": until}):
                ts, cols = codec.decode(blob)
                keep = [i for i, t in enumerate(ts) if start <= t < until]
                rollup.merge_buckets(out, (ts[i] for i in keep),
                                     ([cols[0][i], cols[1][i], cols[2][i], cols[3][i]] for i in keep), step)
        else:
            ts, vals = self.raw(series_id, start, until)
            return rollup.bucketize(ts, vals, step)
        # the unsealed head, always from raw samples
        head = self._head_values(series_id, start, until)
        if head:
            part = rollup.bucketize([h[0] for h in head], [h[1] for h in head], step)
            rollup.merge_buckets(out, part.keys(), part.values(), step)
        return out

    def _head_values(self, series_id: int, since: int, until: int) -> list[tuple[int, float]]:
        """One series' unsealed samples in [since, until), the first value per timestamp.

        After the clock stepped back into an hour already sealed, the head holds
        rows of that hour again until it is sealed once more; a timestamp its
        chunk has already is left out here, as sealing will leave it out (the
        first value written wins), so no sample is counted twice meanwhile.
        """
        seen: dict[int, float] = {}
        for ts, pairs in self.head(since, until):
            for sid, value in pairs:
                if sid == series_id and ts not in seen:
                    seen[ts] = value
        for hour in {t - t % HOUR for t in seen}:
            row = self.conn.execute(sql.CHUNK_GET, {"series_id": series_id, "kind": "raw", "start_ts": hour}).fetchone()
            if row is not None:
                for t in codec.decode(row[0])[0]:
                    seen.pop(t, None)
        return sorted(seen.items())

    def history(self, name: str, match: Mapping[str, str], since: int, until: int, step: int) -> list[Bucket]:
        """One bucket per step and series, oldest first."""
        result = []
        for s in self.series(name, match):
            for b, agg in self.buckets(s.id, since, until, step).items():
                # counts come back from sealed rollups as floats (a chunk's columns are): a count is whole
                result.append(Bucket(b, s.labels, int(agg[0]), agg[1], agg[2], rollup.mean(agg)))
        result.sort(key=lambda b: (b.ts, sorted(b.labels.items())))
        return result


    # --- the RTF histogram -----------------------------------------------------------

    def rtf_histogram(self) -> dict[tuple[str, str, str], dict[float, tuple[int, float]]]:
        """Every record's RTF so far, per (engine, voice, source): bucket upper bound (inf for the
        last) -> (observations in it, their sum), only the buckets that have any."""
        out: dict = {}
        if self.revision < "0006":
            return out
        for engine, voice, source, le, count, total in self.conn.execute(sql.RTF_HISTOGRAM_ALL):
            out.setdefault((engine, voice, source), {})[le] = (count, total)
        return out

    # --- maintenance jobs ------------------------------------------------------------

    def job_runs(self, since_us: int = 0) -> list:
        """Every recorded job run started at or after ``since_us``, oldest first (raw rows)."""
        if self.revision < "0005":
            return []
        return self.conn.execute(sql.JOB_RUNS_SINCE, {"since": since_us}).fetchall()

    def job_last_runs(self) -> list:
        """The newest run of each job (raw rows)."""
        if self.revision < "0005":
            return []
        return self.conn.execute(sql.JOB_RUNS_LAST).fetchall()

    def job_last_slots(self) -> dict[str, float]:
        """The newest schedule slot each job ran for (epoch seconds)."""
        if self.revision < "0005":
            return {}
        return {job: slot / 1e6 for job, slot in self.conn.execute(sql.JOB_LAST_SLOTS) if slot is not None}

def open_reader(config) -> Reader:
    from ..paths import store_path
    return Reader(store_path(config))


