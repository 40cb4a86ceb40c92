"""The rule engine: per-series alert state, judged from windows kept in memory.

Pure: no store, no clock, no threads. The alerts task feeds it the samples
written to the store (``feed``), loads what a window needs at start
(``load``), restores the persisted states (``restore``) and asks it, after
each tick, what changed (``evaluate``).

Each (rule, series) is in one state::

    inactive --condition holds--> pending --held for `for`--> firing --condition false--> resolved (= inactive)
                                     |                          |
                 condition false or value absent: inactive      value absent: stays firing

- The value judged is the series' newest sample, or, with ``window``, a
  statistic over the samples with ``ts > now - window`` (see ``Window``).
- A value is *absent* when the series has no sample in the last ``stale``
  seconds (no window), or its window is empty (``count`` is then 0, never
  absent). Absence ends a pending hold (the hold needs evidence all along)
  but never resolves a firing alert by itself: a sensor that went away
  does not mean the GPU cooled down.
- With ``for = 0`` a rule fires at the first evaluation its condition holds.
"""
from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Iterable, Optional

from .rules import Rule

# A counter's or gauge's starting point for `increase` may lie this far before the window.
BASE_LOOKBACK = 3600


class Window:
    """One series' samples in ``(now - length, now]`` (and later), plus the newest sample before.

    Kept sorted by timestamp; a timestamp seen twice keeps its first value (as
    the store does). ``lo`` marks the first sample still inside the window so
    sliding it costs nothing until the arrays are compacted.

    A window is judged after every tick and may hold a day of samples (86 400 at
    a 1 s interval), so what the default rules ask of it costs the same at any
    length: the sum of its values (``mean``) and a counter's rises between
    neighbours (``increase``) are kept as samples come in and slide out. They are
    kept exactly, as integers counting ``2**-scale`` (every finite float is a
    whole number of such steps; a counter's step is 1), so the answer is the one
    a sum over the whole window gives, to the last bit. A late sample landing
    inside the window, or a value that is not finite, has them recounted whole.
    The samples sit in ``array('d')``: 16 bytes each, not the 64 of two lists of
    floats. ``max``, ``min`` and ``p95`` look at every value each time.
    """
    __slots__ = ("length", "ts", "vals", "lo", "start", "base_ts", "base_val", "total", "rises", "scale", "odd")

    def __init__(self, length: float):
        self.length = length
        self.ts = array("d")
        self.vals = array("d")
        self.lo = 0
        self.start: Optional[float] = None     # samples at or before this have slid out
        self.base_ts: Optional[float] = None   # the newest sample that slid out
        self.base_val: Optional[float] = None
        self.total = 0                         # sum of vals[lo:], in steps of 2**-scale
        self.rises = 0                         # sum of _rise(a, b) over neighbours in vals[lo:], likewise
        self.scale = 0
        self.odd = 0                           # not 0: a value inside is not finite; sums are recounted

    def add(self, t: float, v: float) -> None:
        if self.start is not None and t <= self.start:
            if self.base_ts is None or t > self.base_ts:
                self.base_ts, self.base_val = t, v
            return
        ts, vals = self.ts, self.vals
        if not ts or t > ts[-1]:
            if not self.odd:
                try:
                    num, k = _ratio(v)
                    rnum, rk = _ratio(_rise(vals[-1], v)) if len(vals) > self.lo else (0, 0)
                    self._finer(max(k, rk))
                    self.total += num << (self.scale - k)
                    self.rises += rnum << (self.scale - rk)
                except (OverflowError, ValueError):   # inf or nan (or a rise past the largest float)
                    self.odd = 1
            ts.append(t)
            vals.append(v)
            return
        i = bisect_left(ts, t, self.lo)
        if i < len(ts) and ts[i] == t:
            return
        ts.insert(i, t)
        vals.insert(i, v)
        self._recount()                     # late: its neighbours' rises changed

    def advance(self, now: float) -> None:
        start = now - self.length
        if self.start is not None and start <= self.start:
            return
        self.start = start
        ts, vals, lo, n = self.ts, self.vals, self.lo, len(self.ts)
        first = lo
        while lo < n and ts[lo] <= start:
            if not self.odd:     # what leaves was counted in when it came, in no finer steps than now
                self.total -= self._steps(vals[lo])
                if lo + 1 < n:
                    self.rises -= self._steps(_rise(vals[lo], vals[lo + 1]))
            lo += 1
        if lo != first:
            self.base_ts, self.base_val = ts[lo - 1], vals[lo - 1]
            self.lo = lo
            if lo > 256 and lo * 2 > n:
                del ts[:lo]
                del vals[:lo]
                self.lo = 0
            if self.odd:
                self._recount()

    def _finer(self, k: int) -> None:
        """Count in steps of at most ``2**-k`` from now on."""
        if k > self.scale:
            self.total <<= k - self.scale
            self.rises <<= k - self.scale
            self.scale = k

    def _steps(self, v: float) -> int:
        """``v`` in steps of ``2**-scale``, the scale made finer first where ``v`` needs it (which
        rescales ``total`` and ``rises``: call it before reading them)."""
        num, k = _ratio(v)
        self._finer(k)
        return num << (self.scale - k)

    def _recount(self) -> None:
        vals = self.vals[self.lo:]
        self.total = self.rises = self.scale = self.odd = 0
        try:
            for v in vals:
                steps = self._steps(v)
                self.total += steps
            for a, b in zip(vals, vals[1:]):
                steps = self._steps(_rise(a, b))
                self.rises += steps
        except (OverflowError, ValueError):
            self.odd = 1

    def values(self) -> list[float]:
        return self.vals[self.lo:].tolist()

    def base(self, now: float) -> Optional[float]:
        if self.base_ts is not None and self.base_ts > now - self.length - BASE_LOOKBACK:
            return self.base_val
        return None

    def aggregate(self, name: str, now: float, counter: bool) -> Optional[float]:
        """The statistic ``name`` over the window (call ``advance(now)`` first); None when absent."""
        n = len(self.ts) - self.lo
        if name == "count":
            return float(n)
        if name == "increase":
            return self._increase(n, self.base(now), counter)
        if n == 0:
            return None
        if name == "mean":
            if self.odd:        # an inf or nan inside: a plain sum, where inf - inf is nan (math.fsum raises)
                return sum(self.vals[self.lo:]) / n
            return self.total / (1 << self.scale) / n     # int / int is correctly rounded, as math.fsum is
        vals = self.vals[self.lo:]
        if name == "max":
            return max(vals)
        if name == "min":
            return min(vals)
        if name == "p95":
            return percentile(vals, 0.95)
        raise ValueError(f"unknown aggregate {name!r}")  # pragma: no cover - rules validate it

    def _increase(self, n: int, base: Optional[float], counter: bool) -> Optional[float]:
        """How much the value grew over the window, from its last reading before it when there is one.

        A counter: the sum of its rises, where a fall is a reset (a restart) and
        the new reading counts as risen from zero. A gauge: newest minus oldest.
        None when fewer than two readings are known.
        """
        if n + (base is not None) < 2:
            return None
        first = self.vals[self.lo]
        if not counter:
            return self.vals[-1] - (first if base is None else base)
        rise = 0.0 if base is None else _rise(base, first)
        if self.odd or not math.isfinite(rise):
            seq = ([] if base is None else [base]) + self.values()
            return sum(_rise(a, b) for a, b in zip(seq, seq[1:]))
        num, rk = _ratio(rise)                  # the rise from the base, in the same steps
        k = max(rk, self.scale)
        return ((self.rises << (k - self.scale)) + (num << (k - rk))) / (1 << k)


def _ratio(v: float) -> tuple[int, int]:
    """``v`` as ``num * 2**-k`` exactly. Raises for inf and nan."""
    num, den = v.as_integer_ratio()         # den is a power of two
    return num, den.bit_length() - 1


def _rise(before: float, after: float) -> float:
    """A counter's growth from one reading to the next: a fall is a reset, counted from zero."""
    return after - before if after >= before else after


def percentile(vals: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default, Excel's PERCENTILE.INC)."""
    s = sorted(vals)
    pos = q * (len(s) - 1)
    i = int(pos)
    if i + 1 >= len(s):
        return s[-1]
    return s[i] + (s[i + 1] - s[i]) * (pos - i)


@dataclass
class SeriesData:
    id: int
    name: str
    labels: dict
    key: str                                   # canonical labels text
    rules: list = field(default_factory=list)  # rules that judge this series
    last_ts: Optional[float] = None
    last_val: Optional[float] = None
    windows: dict = field(default_factory=dict)  # length -> Window

    def add(self, t: float, v: float) -> None:
        if self.last_ts is None or t > self.last_ts:
            self.last_ts, self.last_val = t, v
        for w in self.windows.values():
            w.add(t, v)


@dataclass
class AlertState:
    rule: str
    key: str                          # the series' canonical labels
    labels: dict
    metric: str
    state: str                        # pending | firing
    severity: str
    active_since: float               # when the condition began to hold
    fired_at: Optional[float] = None
    value: Optional[float] = None     # the value that fired it (or started the hold)
    summary: str = ""
    event_id: Optional[int] = None


@dataclass
class Change:
    """What ``evaluate`` reports: ``kind`` is pending, cleared (pending ended), firing or resolved."""
    kind: str
    alert: AlertState
    ts: float
    value: Optional[float]            # the value at this evaluation (None: absent)


class Engine:
    def __init__(self, rules: Iterable[Rule], stale: float):
        self.rules = list(rules)
        self.stale = stale
        self.by_metric: dict[str, list[Rule]] = {}
        for r in self.rules:
            self.by_metric.setdefault(r.metric, []).append(r)
        self.rule_by_name = {r.name: r for r in self.rules}
        self.series: dict[int, SeriesData] = {}
        self.states: dict[tuple[str, str], AlertState] = {}

    # --- series and samples ---------------------------------------------------

    def metrics(self) -> set[str]:
        return set(self.by_metric)

    def add_series(self, sid: int, name: str, labels: dict, key: str) -> Optional[SeriesData]:
        """Watch a series if a rule judges it; returns it, or None when no rule does."""
        rules = [r for r in self.by_metric.get(name, ()) if r.matches(labels)]
        if not rules:
            return None
        sd = SeriesData(sid, name, labels, key, rules)
        for r in rules:
            if r.window is not None and r.window not in sd.windows:
                sd.windows[r.window] = Window(r.window)
        self.series[sid] = sd
        return sd

    def feed(self, sid: int, t: float, v: float) -> None:
        sd = self.series.get(sid)
        if sd is not None:
            sd.add(t, v)

    def lookback(self, sid: int) -> float:
        """How far back a series' samples matter at start (its longest window and base)."""
        sd = self.series[sid]
        longest = max(sd.windows, default=0.0)
        return longest + BASE_LOOKBACK if longest else self.stale

    # --- state ------------------------------------------------------------------

    def restore(self, states: Iterable[AlertState]) -> list[AlertState]:
        """Take back persisted states; returns those that no longer belong to a rule (to drop)."""
        dropped = []
        for st in states:
            rule = self.rule_by_name.get(st.rule)
            if rule is None or rule.metric != st.metric or not rule.matches(st.labels):
                dropped.append(st)
                continue
            st.severity, st.summary = rule.severity, rule.summary
            self.states[(st.rule, st.key)] = st
        return dropped

    def forget_pending(self) -> list[AlertState]:
        """After a gap without samples (the daemon was down), holds start over."""
        gone = [st for st in self.states.values() if st.state == "pending"]
        for st in gone:
            del self.states[(st.rule, st.key)]
        return gone

    def value(self, rule: Rule, sd: SeriesData, now: float) -> Optional[float]:
        if rule.window is None:
            if sd.last_ts is None or sd.last_ts <= now - self.stale:
                return None
            return sd.last_val
        return sd.windows[rule.window].aggregate(rule.aggregate, now, rule.kind == "counter")

    def evaluate(self, now: float) -> list[Change]:
        changes: list[Change] = []
        seen = set()
        for sd in self.series.values():
            for w in sd.windows.values():
                w.advance(now)
            for rule in sd.rules:
                key = (rule.name, sd.key)
                seen.add(key)
                self._step(rule, sd, self.value(rule, sd, now), now, changes)
        for key in [k for k in self.states if k not in seen]:
            # a restored alert whose series has not been seen in this run: absent
            st = self.states[key]
            self._step(self.rule_by_name[st.rule], None, None, now, changes, st)
        return changes

    def _step(self, rule: Rule, sd: Optional[SeriesData], v: Optional[float], now: float,
              changes: list, st: Optional[AlertState] = None) -> None:
        key = (rule.name, sd.key if sd is not None else st.key)
        st = self.states.get(key)
        holds = v is not None and rule.holds(v)
        if st is None:
            if not holds:
                return
            st = AlertState(rule.name, sd.key, sd.labels, rule.metric, "pending", rule.severity,
                            active_since=now, value=v, summary=rule.summary)
            self.states[key] = st
            if rule.for_s > 0:
                changes.append(Change("pending", st, now, v))
                return
        if st.state == "pending":
            if not holds:
                del self.states[key]
                changes.append(Change("cleared", st, now, v))
            elif now - st.active_since >= rule.for_s:
                st.state, st.fired_at, st.value = "firing", now, v
                changes.append(Change("firing", st, now, v))
            return
        # firing
        if v is not None and not holds:
            del self.states[key]
            changes.append(Change("resolved", st, now, v))

    def active(self) -> list[AlertState]:
        return [st for st in self.states.values() if st.state == "firing"]
