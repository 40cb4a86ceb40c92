"""Reading RTF records back: the list, the weekly report and its verdict.

Stdlib only (the read-only ``ishowd.store.reader.Reader`` and the SQL of
``ishowd.store.sql``): the CLI must start fast, so nothing here imports
SQLAlchemy, numpy or matplotlib.

Weeks are ISO weeks in UTC (Monday 00:00 UTC to the next Monday). A week
*regresses* (README, "The backend") when the mean RTF of its API requests
exceeds ``baseline × (1 + threshold)``, or their p95 exceeds
``1.5 × baseline``. Only ``source=api`` records are judged (the live-chat
path always runs at NFE 16), and the first request after each backend start
(model compilation, an outlier by design) is left out of the statistics
the verdict is made on, so it can never make a week regress by itself.
Weeks with fewer than ``min_requests`` API requests are reported and not
judged.
"""
from __future__ import annotations

import math
import sqlite3
from datetime import datetime, timezone
from typing import Optional

from ..store import sql
from ..timefmt import iso

WEEK = 7 * 86400
MONDAY0 = 4 * 86400          # 1970-01-05, the first Monday after the epoch
US = 1_000_000
P95_FACTOR = 1.5


class NoRecords(Exception):
    """The store has no RTF table yet (written by an ishowd from before RTF records)."""


def week_start(ts: float) -> int:
    """The Monday 00:00 UTC that starts the ISO week holding ``ts`` (epoch seconds)."""
    return int((ts - MONDAY0) // WEEK * WEEK + MONDAY0)


def iso_week(start: int) -> str:
    y, w, _ = datetime.fromtimestamp(start, timezone.utc).isocalendar()
    return f"{y}-W{w:02d}"


def quantile(sorted_vals: list, q: float) -> Optional[float]:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    n = len(sorted_vals)
    if n == 0:
        return None
    pos = q * (n - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def _query(reader, statement: str, args: dict) -> list:
    try:
        return reader.conn.execute(statement, args).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise NoRecords("the store has no RTF records table yet: restart the daemon or run "
                            "`ishowctl db upgrade`") from None
        raise


# --- the list ------------------------------------------------------------------------

def records(reader, since: float, until: float, source: Optional[str] = None) -> list[dict]:
    args = {"since": int(since * US), "until": int(until * US)}
    if source:
        rows = _query(reader, sql.RTF_RANGE_SOURCE, dict(args, source=source))
    else:
        rows = _query(reader, sql.RTF_RANGE, args)
    return [{"ts": t / US, "rtf": r, "elapsed_ms": ms, "audio_seconds": a, "engine": e, "voice": v, "source": s,
             "first_after_start": bool(f)} for t, r, ms, a, e, v, s, f in rows]


PRODUCTION = ("api", "chat")     # what viewers and clients asked for; "benchmark" is the job's own


def summary(reader, since: float, until: float) -> dict:
    """count, mean and p95 of the production records in [since, until), and per source (the
    benchmark's own requests apart, never in the production figures)."""
    rows = _query(reader, sql.RTF_SOURCE_VALUES, {"since": int(since * US), "until": int(until * US)})
    out = _stats([r for s, r in rows if s in PRODUCTION])
    for src in PRODUCTION + ("benchmark",):
        out[src] = _stats([r for s, r in rows if s == src])
    return out


def _stats(vals: list) -> dict:
    vals = sorted(vals)
    return {"count": len(vals), "mean": sum(vals) / len(vals) if vals else None, "p95": quantile(vals, 0.95)}


# --- the weekly report -------------------------------------------------------------------

class Week:
    """One ISO week of the report, filled in by ``weekly`` and judged by ``judge``."""

    def __init__(self, start: int, complete: bool):
        self.start, self.complete = start, complete
        self.values: list = []                         # API RTFs judged, sorted
        self.first_after_start = 0                     # API compile outliers left out
        self.chat_count = 0                            # live chat: counted apart, never judged
        self.chat_total = 0.0
        self.regression: Optional[bool] = None
        self.reason: Optional[str] = None
        self.slow: list = []                           # timestamps (s) of the API requests above the mean limit
        self.benchmark: list = []                      # (started, mean RTF) of each benchmark run that week

    @property
    def count(self) -> int:
        return len(self.values)

    def stats(self) -> dict:
        v = self.values
        return {"count": len(v), "mean": sum(v) / len(v) if v else None, "p50": quantile(v, 0.5),
                "p95": quantile(v, 0.95), "max": v[-1] if v else None}

    def benchmark_mean(self) -> Optional[float]:
        """The mean of the week's benchmark runs' mean RTFs: a fixed text at a fixed NFE."""
        return sum(m for _, m in self.benchmark) / len(self.benchmark) if self.benchmark else None

    def as_json(self) -> dict:
        return {"week": iso_week(self.start), "start": iso(self.start), **self.stats(),
                "regression": self.regression, "reason": self.reason, "complete": self.complete,
                "first_after_start": self.first_after_start,
                "chat": {"count": self.chat_count,
                         "mean": self.chat_total / self.chat_count if self.chat_count else None},
                "benchmark": {"runs": len(self.benchmark), "mean": self.benchmark_mean()}}


def weekly(reader, *, weeks: int, now: float, baseline: float, threshold: float,
           min_requests: int, hot_celsius: float = 80.0) -> list[Week]:
    """The last ``weeks`` ISO weeks up to the current (incomplete) one, oldest first, judged."""
    current = week_start(now)
    first = current - (weeks - 1) * WEEK
    out = [Week(s, s + WEEK <= now) for s in range(first, current + WEEK, WEEK)]
    by_index = {(w.start - MONDAY0) // WEEK: w for w in out}
    args = {"since": first * US, "until": (current + WEEK) * US, "monday0": MONDAY0, "week": WEEK}
    # SQLite counts week by week; the judged values come back as one flat, time-ordered column that
    # the counts cut into weeks (rows in time order are in week order), so Python touches each once.
    judged = []
    for w in out:
        n_judged, n_first, n_chat, chat_total = _query(
            reader, sql.RTF_WEEK_COUNTS, {"since": w.start * US, "until": (w.start + WEEK) * US})[0]
        w.first_after_start, w.chat_count, w.chat_total = int(n_first), int(n_chat), chat_total
        judged.append((w, int(n_judged)))
    values = [r for (r,) in _query(reader, sql.RTF_JUDGED_VALUES, args)]
    i = 0
    for w, n in judged:
        w.values = sorted(values[i:i + n])
        i += n
    for started, mean in benchmark_runs(reader, first, current + WEEK):
        w = by_index.get((int(started) - MONDAY0) // WEEK)
        if w is not None:
            w.benchmark.append((started, mean))
    limit = baseline * (1 + threshold)
    for w in out:
        judge(w, baseline=baseline, threshold=threshold, min_requests=min_requests)
    regressed = [w for w in out if w.regression]
    if regressed:
        for (ts,) in _query(reader, sql.RTF_JUDGED_ABOVE, dict(args, limit=limit)):
            w = by_index.get((ts // US - MONDAY0) // WEEK)
            if w is not None and w.regression:
                w.slow.append(ts / US)
        causes(reader, regressed, hot_celsius=hot_celsius)
    return out


def benchmark_runs(reader, since: float, until: float) -> list[tuple[float, float]]:
    """(started, mean RTF) of each benchmark job run in [since, until) that measured one, oldest first
    (a run that failed on its figures has them too: that is the regression signal)."""
    import json
    out = []
    for _id, job, started, _fin, _status, _detail, result, _trigger in reader.job_runs(int(since * US)):
        if job != "benchmark" or started >= until * US or not result:
            continue
        try:
            mean = json.loads(result).get("rtf", {}).get("mean")
        except (ValueError, AttributeError):
            continue
        if isinstance(mean, (int, float)) and math.isfinite(mean):
            out.append((started / US, float(mean)))
    return out


def judge(w: Week, *, baseline: float, threshold: float, min_requests: int) -> None:
    st = w.stats()
    n = st["count"]
    left_out = f" ({w.first_after_start} first-after-start left out)" if w.first_after_start else ""
    if n == 0:
        w.regression, w.reason = None, "no API requests" + left_out + ": not judged"
        return
    if n < min_requests:
        w.regression = None
        w.reason = f"only {n} API request{'s' if n != 1 else ''} (fewer than {min_requests}): not judged"
        return
    limit = baseline * (1 + threshold)
    fired = []
    if st["mean"] > limit:
        fired.append(f"mean RTF {st['mean']:.3f} > {limit:.3f} (baseline {baseline:g} x (1 + {threshold:g}))")
    if st["p95"] > P95_FACTOR * baseline:
        fired.append(f"p95 RTF {st['p95']:.3f} > {P95_FACTOR * baseline:.3f} ({P95_FACTOR:g} x baseline {baseline:g})")
    w.regression = bool(fired)
    w.reason = "; ".join(fired) if fired else None


# --- likely causes, from the stored metrics --------------------------------------------

BUCKETS = {"hour": 3600, "minute": 60}


def extremes(reader, metric: str, since: int, until: int, step: int) -> dict[int, tuple[float, float]]:
    """min and max over every series of ``metric`` per ``step`` in [since, until) (rollups and the head)."""
    out: dict[int, tuple[float, float]] = {}
    for b in reader.history(metric, {}, since, until, step):
        old = out.get(b.ts)
        out[b.ts] = (b.min, b.max) if old is None else (min(old[0], b.min), max(old[1], b.max))
    return out


def likely_cause(reader, times: list, *, since: int, until: int, hot_celsius: float, per: str = "hour",
                 what: str = "slow requests") -> str:
    """What the store saw in the hours (or minutes, ``per``) holding ``times``, the moments found
    slow: the GPU's clock not locked, or the GPU hot; else that neither held, or that nothing was read.
    The weekly report's reason and the benchmark's warning end with it."""
    step = BUCKETS[per]
    locked = extremes(reader, "gpu_frequency_locked", since, until, step)
    temp = extremes(reader, "gpu_temperature_celsius", since, until, step)
    buckets = [int(t) - int(t) % step for t in times]
    n = len(buckets)
    seen_lock = [b for b in buckets if b in locked]
    seen_temp = [b for b in buckets if b in temp]
    unlocked = sum(1 for b in seen_lock if locked[b][0] < 0.5)
    hot = [temp[b][1] for b in seen_temp if temp[b][1] >= hot_celsius]
    found = []
    if unlocked:
        found.append(f"GPU not locked during {unlocked} of {n} {what}")
    if hot:
        found.append(f"GPU hot (up to {max(hot):.0f} °C, thermal throttling likely) during {len(hot)} of "
                     f"{n} {what}")
    if found:
        return "likely cause: " + ", ".join(found)
    if seen_lock or seen_temp:
        return f"GPU locked and below {hot_celsius:g} °C while the {what} ran: not the usual causes"
    return f"no GPU readings stored for the {per}s of the {what}"


def causes(reader, regressed: list[Week], *, hot_celsius: float) -> None:
    """Add to each regressed week's reason what the store saw while its slow requests ran."""
    for w in regressed:
        w.reason += "; " + likely_cause(reader, w.slow, since=w.start, until=w.start + WEEK,
                                        hot_celsius=hot_celsius)

