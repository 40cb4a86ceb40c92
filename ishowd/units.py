"""Readings as people read them: 12.3 GiB, 1.30 GHz, 48.5 °C, 37.0 %.

Units are the SI units named in metric names (``ishowd.metrics.UNITS``).
"""
from __future__ import annotations

import math

from .metrics import UNITS


def finite(v: float | None) -> float | None:
    """JSON has no NaN or infinity: such values become null."""
    if v is None or v != v or v in (float("inf"), float("-inf")):
        return None
    return v

_BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
_DECIMAL = ["", "k", "M", "G", "T"]


def humanize(value: float | None, unit: str) -> str:
    """A reading as a person reads it: 12.3 GiB, 1.30 GHz, 48.5 °C, 37.0 %."""
    if value is None:
        return "-"
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if unit == "bytes":
        v, i = abs(value), 0
        while v >= 1024 and i < len(_BINARY) - 1:
            v /= 1024
            i += 1
        sign = "-" if value < 0 else ""
        return f"{sign}{v:.0f} B" if i == 0 else f"{sign}{v:.1f} {_BINARY[i]}"
    if unit in ("hertz", "watts"):
        sym = UNITS[unit]
        v, i = abs(value), 0
        while v >= 1000 and i < len(_DECIMAL) - 1:
            v /= 1000
            i += 1
        sign = "-" if value < 0 else ""
        digits = 2 if unit == "hertz" and i >= 2 else 1 if i else (2 if unit == "watts" else 0)
        return f"{sign}{v:.{digits}f} {_DECIMAL[i]}{sym}"
    if unit == "seconds":
        if abs(value) < 1e-3:
            return f"{value * 1e6:.0f} µs"
        if abs(value) < 1:
            return f"{value * 1e3:.1f} ms"
        if value >= 3600:            # an uptime, a job's age: 6h 27m, not 23267.44 s
            return ago(value)
        return f"{value:.2f} s"
    if unit == "celsius":
        return f"{value:.1f} °C"
    if unit == "percent":
        return f"{value:.1f} %"
    if unit == "rpm":
        return f"{value:.0f} RPM"
    if unit == "boolean":
        return "yes" if value else "no"
    if unit == "count":
        return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"
    return f"{value:.3g}"


# Decimal places a reading of each unit carries: what its sources resolve (sysfs millidegrees,
# microwatts from millivolts times milliamperes, whole bytes, hertz and RPM, microsecond timings,
# a fan's PWM step of 1/255 to a hundredth of a percent), so a sum or a scaling done in binary
# floating point does not print as 0.32999999999999996.
DECIMALS = {"bytes": 0, "hertz": 0, "rpm": 0, "celsius": 3, "watts": 6, "percent": 2, "seconds": 6,
            "ratio": 4, "boolean": 0, "count": 0}
# A mean of such readings resolves finer than one of them (a boolean's mean is the share of time it held).
MEAN_DECIMALS = 3


def resolved(value: float | None, unit: str, *, mean: bool = False) -> float | None:
    """``value`` rounded to what a reading of ``unit`` resolves (finer for a mean); JSON's null for
    NaN and infinity, as ``finite``."""
    value = finite(value)
    if value is None:
        return None
    return round(float(value), DECIMALS.get(unit, 4) + (MEAN_DECIMALS if mean else 0))


def ago(seconds: float) -> str:
    """An age as ``systemctl status`` tells it, to two units at most: 42s, 7m, 3h 5m, 2d 4h."""
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}h {m}m" if m else f"{h}h"
    d, h = divmod(s // 3600, 24)
    return f"{d}d {h}h" if h else f"{d}d"


def column_format(values, unit: str):
    """One formatter for a table column of readings in ``unit``: one scale (the largest value's)
    and one precision for every cell, so a column reads down (1.0 GiB over 0.5 GiB, not 512 MiB)."""
    biggest = max((abs(v) for v in values if v is not None and finite(v) is not None), default=None)
    if biggest is None or unit not in ("bytes", "hertz", "watts", "seconds"):
        return lambda v: humanize(v, unit)
    if unit == "seconds":
        scale, sym, digits = (1e-6, "µs", 0) if biggest < 1e-3 else (1e-3, "ms", 1) if biggest < 1 else (1, "s", 2)
    elif unit == "bytes":
        i = 0
        while biggest >= 1024 and i < len(_BINARY) - 1:
            biggest /= 1024
            i += 1
        scale, sym, digits = 1024 ** i, _BINARY[i], 0 if i == 0 else 1
    else:
        i = 0
        while biggest >= 1000 and i < len(_DECIMAL) - 1:
            biggest /= 1000
            i += 1
        scale, sym = 1000 ** i, _DECIMAL[i] + UNITS[unit]
        digits = 2 if unit == "hertz" and i >= 2 else 1 if i else (2 if unit == "watts" else 0)

    def fmt(v):
        if v is None:
            return "-"
        if finite(v) is None:
            return str(v)
        return f"{v / scale:.{digits}f} {sym}"
    return fmt
