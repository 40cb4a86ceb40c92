"""CPU clocks: ``cpu_frequency_hz{cpu}``, ``cpu_frequency_max_hz{cpu}`` and ``cpu_frequency_locked``.

Read under ``[host] sysfs_root``, ``devices/system/cpu/``:

* ``cpu<N>/cpufreq`` of each online core: a link to its policy (``cpufreq/policy<M>``), shared by the
  cores of one cluster, which run at one clock. Each policy's ``scaling_cur_freq``,
  ``scaling_min_freq`` and ``scaling_max_freq`` (kHz) are read once per tick, whatever the number of
  its cores; ``cpuinfo_max_freq`` once at discovery.
* ``online`` (the list of online cores, ``0-7``): read each tick, so a core taken down or brought up
  (nvpmodel does both) sends the collector back to discovery. Without it, each ``cpu<N>/online`` is
  read at discovery (cpu0 has none: it is always up).

``cpu_frequency_locked`` is 1 only when every online core is pinned at its true maximum,
``scaling_min_freq == scaling_max_freq == cpuinfo_max_freq``, as jetson_clocks leaves them in MAXN.
Cores pinned at a lowered power-mode cap, or scaling, make it 0; it is absent when a core's floor,
cap or maximum cannot be read and no other core is seen unpinned, as the lock is then unknown. One
value for the host, not one per core: jetson_clocks pins every core, and a lock lost on any one
slows what runs there.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable

from ..metrics import Sample
from ..paths import sys_path
from ..specs.cpufreq import CPU_FREQ, CPU_FREQ_MAX, CPU_LOCKED
from . import TickContext, register
from ._sysfs import SysfsCollector, exists, listdir, read_str, try_str

_CPU_DIR = re.compile(r"^cpu(\d+)$")
KHZ = 1000


@dataclass
class _Policy:
    labels: tuple      # ({"cpu": "N"}, ...) of its online cores
    cur: str
    floor: str
    cap: str
    top: int | None    # cpuinfo_max_freq in kHz, None when unreadable


def parse_cpu_list(text: str) -> set[int]:
    """The kernel's cpu list (``0-3,6,8-11``; empty for none). Raises ValueError."""
    out: set[int] = set()
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def _int(path: str) -> int | None:
    try:
        return int(read_str(path))
    except (OSError, ValueError):
        return None


@register
class CpufreqCollector(SysfsCollector):
    name = "cpufreq"
    metrics = (CPU_FREQ, CPU_FREQ_MAX, CPU_LOCKED)
    absent = "no cpufreq"

    def discover(self) -> list[_Policy]:
        base = str(sys_path(self.config, "devices", "system", "cpu"))
        self._online_path = os.path.join(base, "online")
        self._online_seen = try_str(self._online_path)
        try:
            listed = parse_cpu_list(self._online_seen) if self._online_seen is not None else None
        except ValueError:
            listed = None
        cores = sorted(int(m.group(1)) for m in map(_CPU_DIR.match, listdir(base)) if m)
        by_policy: dict[str, list[int]] = {}
        for n in cores:
            cpu = os.path.join(base, f"cpu{n}")
            up = n in listed if listed is not None else try_str(os.path.join(cpu, "online")) in (None, "1")
            freq = os.path.join(cpu, "cpufreq")
            if up and exists(os.path.join(freq, "scaling_cur_freq")):
                by_policy.setdefault(os.path.realpath(freq), []).append(n)
        return [_Policy(labels=tuple({"cpu": str(n)} for n in members),
                        cur=os.path.join(p, "scaling_cur_freq"), floor=os.path.join(p, "scaling_min_freq"),
                        cap=os.path.join(p, "scaling_max_freq"), top=_int(os.path.join(p, "cpuinfo_max_freq")))
                for p, members in sorted(by_policy.items(), key=lambda item: item[1][0])]

    def collect(self, ctx: TickContext) -> Iterable[Sample]:
        if self._online_seen is not None and try_str(self._online_path) != self._online_seen:
            self._stale = True
        return super().collect(ctx)

    def read(self, policies, ctx: TickContext) -> Iterable[Sample]:
        out: list[Sample] = []
        pinned, unknown = [], False
        for p in policies:
            cur = self.value(p.cur)
            floor, cap = self.value(p.floor), self.value(p.cap)
            for labels in p.labels:
                if cur is not None and cur > 0:
                    out.append(Sample(CPU_FREQ, float(cur * KHZ), labels))
                if p.top is not None:
                    out.append(Sample(CPU_FREQ_MAX, float(p.top * KHZ), labels))
            if floor is None or cap is None or p.top is None:
                unknown = True
            else:
                pinned.append(floor == cap == p.top)
        # One cluster seen scaling settles it; an unreadable one leaves a lock unproven.
        if not all(pinned):
            out.append(Sample(CPU_LOCKED, 0.0))
        elif pinned and not unknown:
            out.append(Sample(CPU_LOCKED, 1.0))
        return out
