"""The arithmetic of the leak check: a robust growth rate over pieces of a series, and the
one step that explains a series better than a trend does. Plain Python: no numpy in ishowd.

A series comes in *segments* (the runs of a process between restarts): the rate
is the slope every segment shares, each with its own level, so what a restart
does to the level counts neither as growth nor as a fix.

- The rate is Sen's slope taken within segments only: the median of the slopes
  between every two points of one segment (Hirsch, Slack and Smith's estimator
  for blocked data, with segments for seasons). A median of pairs ignores the
  warm-up ramps, the spikes of a large request and the odd bad sample that
  would drag a least-squares line (up to about 29 % of the points). It needs
  every pair, so more than ``MAX_POINTS`` points are averaged into bins of
  consecutive points first: pairs stay under ``MAX_POINTS ** 2 / 2`` (65 000;
  a fit of a day's 1440 minutes takes 0.03 s), whatever the sampling interval.
- The noise is the spread of the points around that fit: 1.4826 times the
  median absolute residual (the standard deviation, for normal noise).
- A step: the one change of level (anywhere in one segment) that leaves the
  least squared error. When it leaves at most ``STEP_RATIO`` of what the best
  line leaves, the series is a step, not a trend: it is cut there as at a
  restart and the rate is taken again on both sides.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

MAX_POINTS = 360
STEP_RATIO = 0.5     # a step must leave at most half the squared error the line does
MIN_SIDE = 15        # points on each side of a step: a spike of a few minutes is no step
MAD_SIGMA = 1.4826   # median absolute deviation -> standard deviation, for normal noise


class Segment(NamedTuple):
    ts: Sequence[float]
    values: Sequence[float]


class Step(NamedTuple):
    ts: float            # the first point at the new level
    height: float        # new level less old


class Fit(NamedTuple):
    slope: float                 # per second
    noise: float                 # robust standard deviation of the residuals
    span: float                  # seconds covered by the segments (each from its first point to its last)
    points: int
    segments: int
    step: Optional[Step]


def _median(values: list) -> float:
    values.sort()
    n = len(values)
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2


def _binned(segments: Sequence[Segment]) -> list[Segment]:
    """Each segment with every ``k`` consecutive points averaged into one, ``k`` chosen so that at
    most about ``MAX_POINTS`` remain in all."""
    total = sum(len(s.ts) for s in segments)
    k = max(1, math.ceil(total / MAX_POINTS))
    if k == 1:
        return list(segments)
    out = []
    for s in segments:
        ts, vs = [], []
        for i in range(0, len(s.ts), k):
            chunk_t, chunk_v = s.ts[i:i + k], s.values[i:i + k]
            ts.append(sum(chunk_t) / len(chunk_t))
            vs.append(sum(chunk_v) / len(chunk_v))
        out.append(Segment(ts, vs))
    return out


def sen_slope(segments: Sequence[Segment]) -> Optional[float]:
    """The median slope between two points of one segment (None: no segment has two)."""
    slopes = []
    for s in _binned(segments):
        ts, vs = s.ts, s.values
        for i in range(len(ts)):
            ti, vi = ts[i], vs[i]
            slopes.extend((vs[j] - vi) / (ts[j] - ti) for j in range(i + 1, len(ts)) if ts[j] != ti)
    return _median(slopes) if slopes else None


def _centred(s: Segment) -> tuple[list[float], list[float]]:
    mt, mv = sum(s.ts) / len(s.ts), sum(s.values) / len(s.values)
    return [t - mt for t in s.ts], [v - mv for v in s.values]


def line_error(segments: Sequence[Segment]) -> float:
    """The squared error left by the least-squares line of one slope and a level per segment."""
    sxx = sxy = syy = 0.0
    for s in segments:
        ct, cv = _centred(s)
        sxx += sum(t * t for t in ct)
        sxy += sum(t * v for t, v in zip(ct, cv))
        syy += sum(v * v for v in cv)
    return syy - (sxy * sxy / sxx if sxx else 0.0)


def best_step(segments: Sequence[Segment]) -> Optional[tuple[float, int, int, float]]:
    """(squared error left, segment index, index of the first point after, difference of the means)
    of the one change of level that fits best, with a level per segment elsewhere; None when no
    segment is long enough."""
    flat = 0.0
    cuts = []
    for si, s in enumerate(segments):
        _, cv = _centred(s)
        n = len(cv)
        total = sum(v * v for v in cv)
        flat += total
        # with the values centred the left part's sum fixes both means: error = total - S^2 n / (k (n - k))
        run = 0.0
        for k in range(1, n - MIN_SIDE + 1):
            run += cv[k - 1]
            if k >= MIN_SIDE:
                gain = run * run * n / (k * (n - k))
                cuts.append((gain, si, k, -run / k * n / (n - k)))
    if not cuts:
        return None
    gain, si, k, height = max(cuts)
    return flat - gain, si, k, height


def level(s: Segment, slope: float) -> float:
    """The segment's level under ``slope``: the median of value less slope x time."""
    return _median([v - slope * t for t, v in zip(s.ts, s.values)])


def residual_noise(segments: Sequence[Segment], slope: float) -> float:
    """1.4826 x the median absolute residual around ``slope`` with each segment's level."""
    residuals = []
    for s in segments:
        at = level(s, slope)
        residuals.extend(abs(v - slope * t - at) for t, v in zip(s.ts, s.values))
    return MAD_SIGMA * _median(residuals) if residuals else 0.0


def fit(segments: Sequence[Segment]) -> Optional[Fit]:
    """The shared slope of ``segments`` (each sorted by time, two points at least), after cutting
    at the one step that explains them better than a line, if there is one."""
    segments = [s for s in segments if len(s.ts) >= 2]
    if not segments:
        return None
    cut = None
    found = best_step(segments)
    if found is not None:
        left, si, k, _ = found
        if left <= STEP_RATIO * line_error(segments):
            s = segments[si]
            cut = si
            segments = [*segments[:si], Segment(s.ts[:k], s.values[:k]), Segment(s.ts[k:], s.values[k:]),
                        *segments[si + 1:]]
    slope = sen_slope(segments)
    if slope is None:
        return None
    step = None
    if cut is not None:
        # the jump of the fitted line, not the difference of the two sides' means (a trend adds to that)
        before, after = segments[cut], segments[cut + 1]
        step = Step(after.ts[0], level(after, slope) - level(before, slope))
    return Fit(slope, residual_noise(segments, slope), sum(s.ts[-1] - s.ts[0] for s in segments),
               sum(len(s.ts) for s in segments), len(segments) - (step is not None), step)
