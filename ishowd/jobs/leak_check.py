"""The ``leak-check`` job: does the backend's memory, or the GPU memory in use, grow steadily?

Daily, over the last 24 h of the store (read-only): the per-minute means of
``backend_rss_bytes`` and of each GPU's ``gpu_memory_used_bytes``, cut at the
backend's restarts, and a robust growth rate over the pieces (``trend.py``).

A restart shows in the store three ways, and any of them cuts:

- ``backend_starts_total`` rose (the log ingestion saw a "backend ready" line;
  stamped when ishowd read it, seconds later while it runs, so it is rounded
  down to its minute);
- ``backend_rss_bytes`` was absent for longer than the stale window (no backend
  process: the collector writes no sample);
- ``backend_rss_bytes`` fell below half of the minute before within a minute, by
  ``threshold`` at least (a new process starts small; one process does not hand
  half its memory back at once).

``backend_up`` is not used: a failed health probe says the backend did not
answer, not that it restarted (a long synthesis or a hang reads the same, with
the same process and memory). Each GPU series is also cut where it is absent or
halves by itself, by ``threshold`` at least (another process on that GPU ended).
After a restart, ``warmup`` is left out (the models load and the first requests
compile); pieces shorter than an hour are left out.

The verdict per series: a leak when the rate exceeds ``threshold`` bytes a day
and the rise it makes over the data is at least ``NOISE_RATIO`` times the noise
around it. One change of level that fits better than a trend is reported as a
step and cut like a restart: a model or a cache loaded once is not a leak.
"""
from __future__ import annotations

from ..config import Key
from . import DAY, HOUR, Job, JobContext, Outcome, job_keys, register

WINDOW = DAY
MIN_POINTS = 30          # per-minute means: below this no rate is worth a verdict
MIN_PIECE = HOUR         # a piece between two restarts shorter than this is left out
DROP_FRACTION = 0.5      # a minute whose lowest sample is under half the last minute's mean: a new process
MERGE = 300              # restart signs this close together are one restart
# The rise over the data must stand this far out of the noise around the fit: the per-minute
# means of memory wander slowly, so their residuals are far from independent and a t-test on
# 1440 points would call a wobble significant; three times the noise the wobble alone rarely reaches.
NOISE_RATIO = 3.0

RSS = "backend_rss_bytes"
GPU = "gpu_memory_used_bytes"
STARTS = "backend_starts_total"

KEYS = job_keys("leak-check", "15 5 * * *", "5m", {
    "threshold": Key("int", 50_000_000, "growth in bytes a day above which a steady rise is a leak "
                     "(50000000: 50 MB)", min=1_000_000, max=1 << 40),
    "min_span": Key("duration", "6h", "less data than this in the last 24 h (once restarts and warm-ups "
                    "are cut out) is skipped, not judged", min=HOUR, max=DAY),
    "warmup": Key("duration", "15m", "after a backend restart this much is left out: the models are "
                  "still loading", min=0, max=6 * HOUR),
})


# Plain classes, not named tuples: ishowctl imports this module on every start, and defining a
# named tuple costs a fifth of a millisecond.
class Series:
    """One series' per-minute buckets: their times, means and lowest samples."""
    __slots__ = ("name", "labels", "ts", "means", "lows")

    def __init__(self, name: str, labels: dict):
        self.name, self.labels = name, labels
        self.ts: list = []
        self.means: list = []
        self.lows: list = []


class Verdict:
    __slots__ = ("status", "text", "result")

    def __init__(self, status: str, text: str, result: dict):
        self.status = status        # leak | ok | little (too little data) | none (no samples)
        self.text = text
        self.result = result


def _mb(value: float, sign: bool = True) -> str:
    return f"{value / 1e6:+.1f}" if sign else f"{value / 1e6:.1f}"


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _series(reader, name: str, since: int, until: int) -> list[Series]:
    """Each series of metric ``name`` as per-minute buckets, ordered by labels."""
    from ..metrics import labels_key
    by_labels: dict[str, Series] = {}
    for b in reader.history(name, {}, since, until, 60):
        key = labels_key(b.labels)
        s = by_labels.get(key)
        if s is None:
            s = by_labels[key] = Series(name, b.labels)
        s.ts.append(b.ts)
        s.means.append(b.mean)
        s.lows.append(b.min)
    return [by_labels[k] for k in sorted(by_labels)]


def _cuts(s: Series, gap: float, least: float) -> list[tuple[float, str]]:
    """Where the series itself says a process ended: absent longer than ``gap``, or halved within
    a minute, by ``least`` bytes at least (a GPU holding next to nothing halves all the time)."""
    out = []
    for i in range(1, len(s.ts)):
        if s.ts[i] - s.ts[i - 1] > gap:
            out.append((s.ts[i], "absent"))
        elif s.lows[i] < DROP_FRACTION * s.means[i - 1] and s.means[i - 1] - s.lows[i] >= least:
            out.append((s.ts[i], "dropped"))
    return out


def _starts(reader, since: int, until: int) -> list[tuple[float, str]]:
    out = []
    for series in reader.series(STARTS):
        ts, values = reader.raw(series.id, since, until)
        out += [(ts[i] - ts[i] % 60, STARTS) for i in range(1, len(ts)) if values[i] > values[i - 1]]
    return out


def _restarts(signs: list[tuple[float, str]]) -> list[tuple[float, list[str]]]:
    """Signs of a restart, those within ``MERGE`` of the one before taken together: (time, what showed)."""
    out: list[tuple[float, list[str]]] = []
    for at, what in sorted(signs):
        if out and at - out[-1][0] <= MERGE:
            if what not in out[-1][1]:
                out[-1][1].append(what)
        else:
            out.append((at, [what]))
    return out


def _pieces(s: Series, cuts: list[float], warmup: float):
    """The series between cuts, less each cut's warm-up and the pieces shorter than ``MIN_PIECE``."""
    from bisect import bisect_right
    from .trend import Segment
    cuts = sorted(set(cuts))
    groups: dict[int, tuple[list, list]] = {}
    for t, v in zip(s.ts, s.means):
        i = bisect_right(cuts, t)
        if i and t < cuts[i - 1] + warmup:
            continue
        ts, vs = groups.setdefault(i, ([], []))
        ts.append(t)
        vs.append(v)
    return [Segment(ts, vs) for _, (ts, vs) in sorted(groups.items()) if ts[-1] - ts[0] >= MIN_PIECE]


class _Clock:
    """Times in the detail as the schedule reads them: ``[jobs] timezone``, else the host's."""

    def __init__(self, config):
        from zoneinfo import ZoneInfo
        name = config.jobs.timezone
        self.tz = ZoneInfo(name) if name else None

    def hhmm(self, ts: float) -> str:
        from datetime import datetime
        dt = datetime.fromtimestamp(ts, self.tz) if self.tz else datetime.fromtimestamp(ts).astimezone()
        return dt.strftime("%H:%M")


@register
class LeakCheck(Job):
    name = "leak-check"
    period = DAY

    def run(self, ctx: JobContext) -> Outcome:
        from ..paths import store_path
        from ..settings import stale_window
        from ..store.errors import NoStore
        from ..store.reader import Reader
        from ..timefmt import iso
        s = self.settings
        until = int(ctx.now)
        since = until - WINDOW
        try:
            reader = Reader(store_path(self.config))
        except NoStore as exc:
            return Outcome("skipped", str(exc), {})
        try:
            rss = _series(reader, RSS, since, until)
            gpus = _series(reader, GPU, since, until)
            signs = _starts(reader, since - HOUR, until)
        finally:
            reader.close()
        ctx.check()
        gap = max(120.0, stale_window(self.config))
        for r in rss:
            signs += _cuts(r, gap, s.threshold)
        restarts = _restarts(signs)
        restart_times = [at for at, _ in restarts]
        clock = _Clock(self.config)
        verdicts = []
        for series in rss or [Series(RSS, {})]:
            verdicts.append(self._judge(series, restart_times, clock))
            ctx.check()
        for series in gpus:
            own = [at for at, _ in _cuts(series, gap, s.threshold)]
            verdicts.append(self._judge(series, restart_times + own, clock))
            ctx.check()
        seen = [(at, what) for at, what in restarts if since <= at < until]
        result = {
            "window_s": WINDOW, "threshold_bytes_per_day": s.threshold,
            "restarts": [{"at": iso(at), "seen": what} for at, what in seen],
            "series": [v.result for v in verdicts],
        }
        restarts_text = f"{len(seen)} restart{'' if len(seen) == 1 else 's'}"
        leaks = [v for v in verdicts if v.status == "leak"]
        judged = [v for v in verdicts if v.status in ("leak", "ok")]
        others = [v for v in verdicts if v.status != "leak"]
        if leaks:
            return Outcome("failed", "leak: " + "; ".join(v.text for v in leaks + others) + "; " + restarts_text,
                           result)
        if judged:
            return Outcome("ok", "no leak: " + "; ".join(v.text for v in verdicts) + "; " + restarts_text, result)
        return Outcome("skipped", "too little data in the last 24 h: " + "; ".join(v.text for v in verdicts)
                       + f" (needs {_span(s.min_span)})", result)

    def _judge(self, series: Series, cuts: list[float], clock: _Clock) -> Verdict:
        from ..metrics import labels_text
        from ..timefmt import iso
        from .trend import fit
        s = self.settings
        label = series.name + labels_text(series.labels)
        base = {"metric": series.name, "labels": series.labels}
        if not series.ts:
            return Verdict("none", f"{label}: no samples", dict(base, verdict="no samples"))
        pieces = _pieces(series, cuts, s.warmup)
        found = fit(pieces)
        points = 0 if found is None else found.points
        span = 0.0 if found is None else found.span
        if found is None or points < MIN_POINTS or span < s.min_span:
            return Verdict("little", f"{label}: {_span(span)} ({points} points)",
                           dict(base, verdict="too little data", span_s=span, points=points))
        rate = found.slope * DAY
        rise = found.slope * span
        leak = rate > s.threshold and rise >= NOISE_RATIO * found.noise
        over = f"over {_span(span)} ({points} points, noise ±{_mb(found.noise, False)} MB)"
        if leak:
            text = f"{label} grows {_mb(rate)} MB/day {over}"
        elif rate > s.threshold:
            text = f"{label} {_mb(rate)} MB/day {over}: within its noise"
        else:
            text = f"{label} {_mb(rate)} MB/day {over}"
        step = found.step
        if step is not None:
            what = f"one step of {step.height / 1e6:+.0f} MB at {clock.hhmm(step.ts)}"
            if leak:
                text = f"{label} grows {_mb(rate)} MB/day besides {what} {over}"
            elif rate > s.threshold:
                text = f"{label}: {what}, and {_mb(rate)} MB/day within its noise {over}"
            else:
                text = f"{label}: {what}, flat before and after: {_mb(rate)} MB/day {over}"
        return Verdict("leak" if leak else "ok", text, dict(
            base, verdict="leak" if leak else "ok", slope_bytes_per_day=round(rate), span_s=span, points=points,
            noise_bytes=round(found.noise), pieces=found.segments,
            step=None if step is None else {"at": iso(step.ts), "bytes": round(step.height)}))
