"""Jetson power rails from the INA3221 monitors: ``power_watts{rail}``.

Discovery: ``bus/i2c/devices/*/name`` containing ``ina3221``; inside, either

* hwmon (JetPack 5 and 6): ``hwmon/hwmon<N>/in<C>_label`` (the rail),
  ``in<C>_input`` (bus voltage, mV) and ``curr<C>_input`` (mA), or
* iio (JetPack 4): ``iio:device<N>/rail_name_<C>``, ``in_voltage<C>_input``
  (mV) and ``in_current<C>_input`` (mA).

Each tick, power = voltage × current (mV × mA / 10⁶ = W). Channels labelled
``NC`` are not connected, and the ``sum of shunt voltages`` channel (in7) is
not a rail: neither is read. Where the board has an input rail (``VDD_IN`` on
Orin NX/Nano and Xavier NX, ``POM_5V_IN`` on Nano/TX2: a label ending in
``_IN``), its reading is also given as ``rail="total"``, the whole module's
draw. The AGX Orin has no input monitor, so no total is given there (a sum of
the rails it does have would be invented).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable

from ..metrics import Sample
from ..paths import sys_path
from ..specs.power import POWER
from . import TickContext, register
from ._sysfs import SysfsCollector, exists, listdir, try_str


TOTAL = "total"
_HWMON_LABEL = re.compile(r"^in(\d+)_label$")
_IIO_LABEL = re.compile(r"^rail_name_(\d+)$")


def is_rail(label: str) -> bool:
    return bool(label) and label.upper() != "NC" and "sum of shunt" not in label.lower()


def is_input_rail(label: str) -> bool:
    return label.upper().endswith("_IN")


@dataclass(frozen=True)
class Rail:
    label: str
    volts: str   # path, mV
    amps: str    # path, mA
    total: bool  # also reported as rail="total"


def find_rails(config) -> list[Rail]:
    base = str(sys_path(config, "bus", "i2c", "devices"))
    rails: list[Rail] = []
    for dev in listdir(base):
        ddir = os.path.join(base, dev)
        name = try_str(os.path.join(ddir, "name"))
        if not name or "ina3221" not in name.lower():
            continue
        for hw in listdir(os.path.join(ddir, "hwmon")):
            rails += _labelled(os.path.join(ddir, "hwmon", hw), _HWMON_LABEL, "in{}_input", "curr{}_input")
        for iio in listdir(ddir):
            if iio.startswith("iio:device"):
                rails += _labelled(os.path.join(ddir, iio), _IIO_LABEL, "in_voltage{}_input", "in_current{}_input")
    rails = [r for r in rails if r is not None]
    # Duplicate labels across monitors would merge two series: keep the first of each.
    seen, unique = set(), []
    for r in rails:
        if r.label not in seen:
            seen.add(r.label)
            unique.append(r)
    total_taken = False
    out = []
    for r in unique:
        if r.total and not total_taken:
            total_taken = True
        elif r.total:
            r = Rail(r.label, r.volts, r.amps, False)
        out.append(r)
    return out


def _labelled(d: str, label_re: re.Pattern, volts: str, amps: str) -> list:
    """The rails a monitor's directory names: a label file per channel, its voltage and current beside it
    (hwmon: ``in1_label``, ``in1_input``, ``curr1_input``; iio: ``rail_name_0``, ``in_voltage0_input``, ...)."""
    found = []
    for f in listdir(d):
        m = label_re.match(f)
        if m:
            c = m.group(1)
            found.append(_rail(try_str(os.path.join(d, f)), os.path.join(d, volts.format(c)),
                               os.path.join(d, amps.format(c))))
    return found


def _rail(label: str | None, volts: str, amps: str) -> Rail | None:
    if label is None or not is_rail(label) or not (exists(volts) and exists(amps)):
        return None
    return Rail(label, volts, amps, is_input_rail(label))


@register
class PowerCollector(SysfsCollector):
    name = "power"
    metrics = (POWER,)
    absent = "no INA3221 power monitor"

    def discover(self) -> list[Rail]:
        return find_rails(self.config)

    def read(self, rails, ctx: TickContext) -> Iterable[Sample]:
        out: list[Sample] = []
        for r in rails:
            mv, ma = self.value(r.volts), self.value(r.amps)
            if mv is None or ma is None or mv < 0 or ma < 0:
                continue
            watts = mv * ma / 1e6
            out.append(Sample(POWER, watts, {"rail": r.label}))
            if r.total:
                out.append(Sample(POWER, watts, {"rail": TOTAL}))
        return out
