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
    sliding it costs nothing until the list is compacted.
    """
    __slots__ = ("length", "ts", "vals", "lo", "start", "base_ts", "base_val")

    def __init__(self, length: float):
        self.length = length
        self.ts: list[float] = []
        self.vals: list[float] = []
        self.lo = 0
        self.start: Optional[float] = None     # samples at or before this have slid out
        self.base_ts: Optional[float] = None   # the newest sample that slid out
        self.base_val: Optional[float] = None

    def add(self, t: float, v: float) -> None:
        if self.start is not None and t <= self.start:
            if self.base_ts is None or t > self.base_ts:
                self.base_ts, self.base_val = t, v
            return
        ts = self.ts
        if not ts or t > ts[-1]:
            ts.append(t)
            self.vals.append(v)
            return
        i = bisect_left(ts, t, self.lo)
        if i < len(ts) and ts[i] == t:
            return
        ts.insert(i, t)
        self.vals.insert(i, v)

    def advance(self, now: float) -> None:
        start = now - self.length
        if self.start is not None and start <= self.start:
            return
        self.start = start
        ts, lo, n = self.ts, self.lo, len(self.ts)
        while lo < n and ts[lo] <= start:
            lo += 1
        if lo != self.lo:
            self.base_ts, self.base_val = ts[lo - 1], self.vals[lo - 1]
            self.lo = lo
            if lo > 256 and lo * 2 > n:
                del ts[:lo]
                del self.vals[:lo]
                self.lo = 0

    def values(self) -> list[float]:
        return self.vals[self.lo:]

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
            return _increase(self.values(), self.base(now), counter)
        if n == 0:
            return None
        vals = self.values()
        if name == "mean":
            return math.fsum(vals) / n
        if name == "max":
            return max(vals)
        if name == "min":
            return min(vals)
        if name == "p95":
            return percentile(vals, 0.95)
        raise ValueError(f"unknown aggregate {name!r}")  # pragma: no cover - rules validate it


def percentile(vals: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default, Excel's PERCENTILE.INC)."""
    s = sorted(vals)
    pos = q * (len(s) - 1)
    i = int(pos)
    if i + 1 >= len(s):
        return s[-1]
    return s[i] + (s[i + 1] - s[i]) * (pos - i)


def _increase(vals: list[float], base: Optional[float], counter: bool) -> Optional[float]:
    """How much the value grew over the window, from its last reading before it when there is one.

    A counter: the sum of its rises, where a fall is a reset (a restart) and
    the new reading counts as risen from zero. A gauge: newest minus oldest.
    None when fewer than two readings are known.
    """
    seq = vals if base is None else [base, *vals]
    if len(seq) < 2:
        return None
    if not counter:
        return seq[-1] - seq[0]
    total, prev = 0.0, seq[0]
    for v in seq[1:]:
        total += v - prev if v >= prev else v
        prev = v
    return total


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
