"""Thermal zones: ``temperature_celsius{zone}`` and, on a Jetson, ``gpu_temperature_celsius{gpu}``.

Read ``class/thermal/thermal_zone*/type`` once (discovery) and ``temp``
(millidegrees Celsius) each tick. ``zone`` is the zone's ``type``; when
several zones share a type (``acpitz`` twice on some PCs) each becomes
``<type>.<n>`` with ``n`` its thermal_zone number, so no series is merged.

A reading is not data, and is absent for that tick only, when the read fails
(EAGAIN from ``cv*-thermal`` while the DLA/PVA are off, any OSError), when the
file is empty or not a number, or when it is outside -55..150 °C (an absent
sensor reads -256000). Zones whose type starts with ``PMIC`` report a limit,
not a temperature: they are never read.
"""
from __future__ import annotations

import os
import re
from typing import Iterable

from ..metrics import Sample
from ..paths import sys_path
from ..specs.gpu import GPU_TEMP
from ..specs.thermal import TEMPERATURE
from . import TickContext, register
from ._gpu import jetson_gpu_label
from ._sysfs import SysfsCollector, exists, listdir, try_str


# Plausible die/board temperatures; outside this a sensor is absent or broken (-256 °C = offline).
MIN_CELSIUS, MAX_CELSIUS = -55.0, 150.0
_GPU_ZONE = re.compile(r"^gpu[-_]?therm", re.IGNORECASE)
_ZONE_DIR = re.compile(r"^thermal_zone(\d+)$")


def is_gpu_zone(zone_type: str) -> bool:
    """``gpu-thermal`` (JetPack 6), ``GPU-therm`` (older boards)."""
    return bool(_GPU_ZONE.match(zone_type))


@register
class ThermalCollector(SysfsCollector):
    name = "thermal"
    metrics = (TEMPERATURE, GPU_TEMP)
    absent = "no thermal zones"

    def setup(self):
        self._gpu_label = jetson_gpu_label(self.config)
        return super().setup()

    def discover(self) -> list[tuple[str, str, str | None]]:
        """[(temp path, zone label, gpu label or None)] for every readable-looking zone."""
        base = str(sys_path(self.config, "class", "thermal"))
        found = []
        for entry in listdir(base):
            m = _ZONE_DIR.match(entry)
            if not m:
                continue  # cooling_device*
            zdir = os.path.join(base, entry)
            ztype = try_str(os.path.join(zdir, "type"))
            temp = os.path.join(zdir, "temp")
            if not ztype or ztype.upper().startswith("PMIC") or not exists(temp):
                continue
            found.append((int(m.group(1)), ztype, temp))
        found.sort()
        counts: dict[str, int] = {}
        for _, ztype, _ in found:
            counts[ztype] = counts.get(ztype, 0) + 1
        zones = []
        gpu_zone_taken = False
        for num, ztype, temp in found:
            label = ztype if counts[ztype] == 1 else f"{ztype}.{num}"
            gpu = None
            if self._gpu_label is not None and not gpu_zone_taken and is_gpu_zone(ztype):
                gpu, gpu_zone_taken = self._gpu_label, True
            zones.append((temp, label, gpu))
        return zones

    def read(self, zones, ctx: TickContext) -> Iterable[Sample]:
        out: list[Sample] = []
        for temp, label, gpu in zones:
            milli = self.value(temp)
            if milli is None:
                continue
            celsius = milli / 1000.0
            if not MIN_CELSIUS <= celsius <= MAX_CELSIUS:
                continue
            out.append(Sample(TEMPERATURE, celsius, {"zone": label}))
            if gpu is not None:
                out.append(Sample(GPU_TEMP, celsius, {"gpu": gpu}))
        return out
