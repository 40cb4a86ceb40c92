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
