"""Jetson GPU through devfreq: load, clocks, and whether the clock is locked at maximum.

Read (all under ``[host] sysfs_root``), for each GPU found by
:func:`~ishowd.collectors._gpu.find_jetson_gpus`:

* ``<device>/load``: per-mille busy (0-1000) -> ``gpu_utilization_percent`` = load / 10
* ``<devfreq>/cur_freq`` -> ``gpu_frequency_hz``
* ``<devfreq>/min_freq``, ``max_freq`` -> ``gpu_frequency_floor_hz``, ``gpu_frequency_cap_hz``
* ``<devfreq>/available_frequencies`` (read once at discovery) ->
  ``gpu_frequency_max_hz`` = its highest entry

``gpu_frequency_locked`` is 1 only when ``min_freq == max_freq ==
max(available_frequencies)``: ``jetson_clocks`` raises the floor to the cap,
and only in MAXN is the cap the true maximum. A GPU pinned at a lowered
nvpmodel cap, or scaling freely, is 0. Without a readable
``available_frequencies`` the true maximum is unknown and the lock is absent.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

from ..metrics import Sample
from ..specs.gpu import GPU_FREQ, GPU_FREQ_CAP, GPU_FREQ_FLOOR, GPU_FREQ_MAX, GPU_LOCKED, GPU_UTIL
from . import TickContext, register
from ._gpu import find_jetson_gpus
from ._sysfs import SysfsCollector, read_bytes


@dataclass
class _Paths:
    label: str
    load: str
    cur: str
    floor: str
    cap: str
    top: int | None      # max(available_frequencies), or None when unreadable


def _available_max(devfreq: str) -> int | None:
    try:
        values = [int(v) for v in read_bytes(os.path.join(devfreq, "available_frequencies")).split()]
    except (OSError, ValueError):
        return None
    return max(values) if values else None


@register
class JetsonGpuCollector(SysfsCollector):
    name = "jetson_gpu"
    metrics = (GPU_UTIL, GPU_FREQ, GPU_FREQ_MAX, GPU_FREQ_CAP, GPU_FREQ_FLOOR, GPU_LOCKED)

    absent = "no devfreq GPU"

    def discover(self) -> list[_Paths]:
        out = []
        for g in find_jetson_gpus(self.config):
            out.append(_Paths(label=g.label, load=os.path.join(g.device, "load"),
                              cur=os.path.join(g.devfreq, "cur_freq"), floor=os.path.join(g.devfreq, "min_freq"),
                              cap=os.path.join(g.devfreq, "max_freq"), top=_available_max(g.devfreq)))
        return out

    def read(self, gpus, ctx: TickContext) -> Iterable[Sample]:
        out: list[Sample] = []
        for g in gpus:
            labels = {"gpu": g.label}
            load = self.value(g.load)
            if load is not None and 0 <= load <= 1000:
                out.append(Sample(GPU_UTIL, load / 10.0, labels))
            cur = self.value(g.cur)
            if cur is not None and cur > 0:
                out.append(Sample(GPU_FREQ, float(cur), labels))
            floor = self.value(g.floor)
            if floor is not None and floor > 0:
                out.append(Sample(GPU_FREQ_FLOOR, float(floor), labels))
            cap = self.value(g.cap)
            if cap is not None and cap > 0:
                out.append(Sample(GPU_FREQ_CAP, float(cap), labels))
            if g.top is not None:
                out.append(Sample(GPU_FREQ_MAX, float(g.top), labels))
                if floor is not None and cap is not None and floor > 0:
                    locked = floor == cap == g.top
                    out.append(Sample(GPU_LOCKED, 1.0 if locked else 0.0, labels))
        return out
