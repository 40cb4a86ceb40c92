"""Aggregates: (count, min, max, sum) per bucket, combinable without loss.

The same arithmetic serves the writer (per-minute and per-hour rollups at
seal time) and the reader (history buckets), so both agree by construction.
``sum`` rather than ``mean`` is stored so buckets combine exactly.
"""
from __future__ import annotations

import math
from typing import Iterable

# An aggregate is a list [count, min, max, sum].
Agg = list


def of_values(values: Iterable[float]) -> Agg:
    vals = list(values)
    return [len(vals), min(vals), max(vals), math.fsum(vals)]


def combine(into: Agg, other: Agg) -> Agg:
    into[0] += other[0]
    if other[1] < into[1] or into[1] != into[1]:
        into[1] = other[1]
    if other[2] > into[2] or into[2] != into[2]:
        into[2] = other[2]
    into[3] = into[3] + other[3]
    return into


def add(agg: Agg, n: int, lo: float, hi: float, total: float) -> None:
    """Fold ``n`` values (their min, max and sum) into ``agg``, in place: the hot path of
    catching up on a backlog, one call per record, so plain comparisons and no list."""
    agg[0] += n
    if lo < agg[1]:
        agg[1] = lo
    if hi > agg[2]:
        agg[2] = hi
    agg[3] += total


def bucketize(ts: Iterable[int], values: Iterable[float], step: int) -> dict[int, Agg]:
    """Group raw samples into step-aligned buckets (UTC epoch multiples)."""
    groups: dict[int, list[float]] = {}
    for t, v in zip(ts, values):
        groups.setdefault(t - t % step, []).append(v)
    return {b: of_values(vs) for b, vs in groups.items()}


def merge_buckets(into: dict[int, Agg], ts: Iterable[int], aggs: Iterable[Agg], step: int) -> dict[int, Agg]:
    """Fold pre-aggregated rows (minute or hour rollups) into coarser buckets."""
    for t, agg in zip(ts, aggs):
        b = t - t % step
        have = into.get(b)
        if have is None:
            into[b] = list(agg)
        else:
            combine(have, agg)
    return into


def mean(agg: Agg) -> float:
    return agg[3] / agg[0] if agg[0] else math.nan
