"""Fans: ``fan_speed_percent{fan}`` from PWM duty, ``fan_speed_rpm{fan}`` where a tachometer exists.

Discovery through ``class/hwmon/*``: a hwmon with ``pwm<N>`` files is a fan
(``pwm-fan`` on Jetson, named ``pwmfan``; a PC's Super-I/O chip). Percent =
pwm × 100 / 255. RPM comes from ``fan<N>_input`` beside ``pwm<N>`` (PCs) or
from a hwmon with an ``rpm`` file (the Jetson tachometer,
``…/39c0000.tachometer/hwmon/hwmon<N>/rpm``); when the host has exactly one
PWM fan without its own RPM, a lone tachometer is taken to measure that fan
and shares its label. The JetPack 4 ``/sys/devices/pwm-fan/cur_pwm`` and
``rpm_measured`` files (Nano, TX2) are read when no hwmon fan exists.

``fan`` is the hwmon's ``name`` (``pwmfan``), with ``.pwm<N>`` appended when a
hwmon drives several fans.
"""
from __future__ import annotations

import os
import re
from typing import Iterable

from ..metrics import Sample
from ..paths import sys_path
from ..specs.fan import FAN_PERCENT, FAN_RPM
from . import TickContext, register
from ._sysfs import SysfsCollector, exists, listdir, try_str


_PWM = re.compile(r"^pwm(\d+)$")
_FAN_INPUT = "fan{}_input"


def find_fans(config) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """([(fan label, pwm path)], [(fan label, rpm path)])."""
    base = str(sys_path(config, "class", "hwmon"))
    pwms: list[tuple[str, str]] = []
    rpms: list[tuple[str, str]] = []
    tachs: list[tuple[str, str]] = []      # lone `rpm` files, paired below
    for hw in listdir(base):
        hdir = os.path.join(base, hw)
        files = listdir(hdir)
        name = try_str(os.path.join(hdir, "name")) or hw
        channels = [m.group(1) for m in map(_PWM.match, files) if m]
        for c in channels:
            label = name if len(channels) == 1 else f"{name}.pwm{c}"
            pwms.append((label, os.path.join(hdir, f"pwm{c}")))
            if _FAN_INPUT.format(c) in files:
                rpms.append((label, os.path.join(hdir, _FAN_INPUT.format(c))))
        if "rpm" in files and exists(os.path.join(hdir, "rpm")):
            tachs.append((name, os.path.join(hdir, "rpm")))
    if not pwms:
        legacy = str(sys_path(config, "devices", "pwm-fan"))
        if exists(os.path.join(legacy, "cur_pwm")):
            pwms.append(("pwm-fan", os.path.join(legacy, "cur_pwm")))
            if exists(os.path.join(legacy, "rpm_measured")):
                rpms.append(("pwm-fan", os.path.join(legacy, "rpm_measured")))
    with_rpm = {label for label, _ in rpms}
    without = [label for label, _ in pwms if label not in with_rpm]
    if len(tachs) == 1 and len(without) == 1 and len(pwms) == 1:
        rpms.append((without[0], tachs[0][1]))
    else:
        rpms += tachs
    return pwms, rpms


@register
class FanCollector(SysfsCollector):
    name = "fan"
    metrics = (FAN_PERCENT, FAN_RPM)
    absent = "no fan"

    def discover(self) -> list[tuple[str, str, bool]]:
        """[(fan label, path, is_rpm)]: pwm files, then tachometers."""
        pwms, rpms = find_fans(self.config)
        return [(label, path, False) for label, path in pwms] + [(label, path, True) for label, path in rpms]

    def read(self, fans, ctx: TickContext) -> Iterable[Sample]:
        out: list[Sample] = []
        for label, path, is_rpm in fans:
            v = self.value(path)
            if v is None:
                continue
            if is_rpm and v >= 0:
                out.append(Sample(FAN_RPM, float(v), {"fan": label}))
            elif not is_rpm and 0 <= v <= 255:
                out.append(Sample(FAN_PERCENT, v * 100.0 / 255.0, {"fan": label}))
        return out
