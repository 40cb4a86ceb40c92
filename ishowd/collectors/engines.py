"""The Jetson's engines where devfreq shows them: ``engine_frequency_hz{engine}``, its cap and maximum.

Every ``class/devfreq/*`` entry under ``[host] sysfs_root`` that is not the GPU (the GPU
collectors read that one) is an engine: on an Orin, ``15340000.vic`` and such others as the
kernel registers (NVENC, NVDEC, NVJPG, DLA, PVA). ``engine`` is the entry's name, stable as the
``gpu`` label is. Each tick reads ``cur_freq`` and ``max_freq``; ``available_frequencies`` is read
once at discovery. Engines that devfreq does not list have their clocks in debugfs, readable by
root only: they are absent, never guessed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

from ..metrics import Sample
from ..paths import sys_path
from ..specs.engines import ENGINE_FREQ, ENGINE_FREQ_CAP, ENGINE_FREQ_MAX
from . import TickContext, register
from ._gpu import find_jetson_gpus
from ._sysfs import SysfsCollector, exists, listdir
from .jetson_gpu import _available_max  # a devfreq table is read the same for any device


@dataclass
class _Engine:
    labels: dict
    cur: str
    cap: str
    top: int | None


@register
class EnginesCollector(SysfsCollector):
    name = "engines"
    metrics = (ENGINE_FREQ, ENGINE_FREQ_CAP, ENGINE_FREQ_MAX)
    absent = "no devfreq engine besides the GPU"

    def discover(self) -> list[_Engine]:
        base = str(sys_path(self.config, "class", "devfreq"))
        gpus = {g.label for g in find_jetson_gpus(self.config)}
        out = []
        for entry in listdir(base):
            devfreq = os.path.realpath(os.path.join(base, entry))
            if entry in gpus or not exists(os.path.join(devfreq, "cur_freq")):
                continue
            out.append(_Engine(labels={"engine": entry}, cur=os.path.join(devfreq, "cur_freq"),
                               cap=os.path.join(devfreq, "max_freq"), top=_available_max(devfreq)))
        return out

    def read(self, engines, ctx: TickContext) -> Iterable[Sample]:
        out: list[Sample] = []
        for e in engines:
            cur = self.value(e.cur)
            if cur is not None and cur > 0:
                out.append(Sample(ENGINE_FREQ, float(cur), e.labels))
            cap = self.value(e.cap)
            if cap is not None and cap > 0:
                out.append(Sample(ENGINE_FREQ_CAP, float(cap), e.labels))
            if e.top is not None:
                out.append(Sample(ENGINE_FREQ_MAX, float(e.top), e.labels))
        return out
