"""The registry of declared metrics: the one place names, units and help live.

Every collector declares its metrics here at import time (as node_exporter's
collectors and Glances' ``fields_description`` do), so the store, the CLI and
the exporter learn a metric's unit and description from one record and never
repeat that knowledge.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

# Units are SI and named in the metric name (see docs/interface.md).
UNITS = {
    "bytes": "B",
    "hertz": "Hz",
    "seconds": "s",
    "celsius": "°C",
    "watts": "W",
    "percent": "%",
    "rpm": "RPM",
    "ratio": "",
    "boolean": "",
    "count": "",
}


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    help: str
    labels: tuple[str, ...] = ()
    # "gauge" for a reading, "counter" for a running total (an exporter needs this).
    kind: str = "gauge"
    # The group `ishowctl status` shows the metric under (host, gpu, thermal, ...).
    group: str = "host"

    def __post_init__(self):
        if self.unit not in UNITS:
            raise ValueError(f"metric {self.name}: unknown unit {self.unit!r}")
        if self.kind not in ("gauge", "counter"):
            raise ValueError(f"metric {self.name}: kind must be gauge or counter")


REGISTRY: dict[str, Metric] = {}


def declare(name: str, unit: str, help: str, labels: Iterable[str] = (), *,
            kind: str = "gauge", group: str = "host") -> Metric:
    """Declare a metric once; re-declaring the same name identically is harmless."""
    metric = Metric(name, unit, help, tuple(labels), kind, group)
    known = REGISTRY.get(name)
    if known is not None and known != metric:
        raise ValueError(f"metric {name} declared twice with different definitions")
    REGISTRY[name] = metric
    return metric


def load_declarations() -> dict[str, Metric]:
    """Import every module that declares metrics (collectors, tasks); returns the registry."""
    from . import collectors, tasks
    collectors.load_all()
    tasks.load_all()
    return REGISTRY


def get(name: str) -> Metric | None:
    return load_declarations().get(name)


@dataclass(frozen=True)
class Sample:
    """One reading. ``ts`` is None for "this tick"; set it for per-event samples."""
    metric: Metric
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    ts: float | None = None

    def key(self) -> tuple[str, str]:
        return self.metric.name, labels_key(self.labels)


def labels_key(labels: Mapping[str, str]) -> str:
    """The canonical text form of a label set, as stored in the series table."""
    if not labels:
        return ""
    return json.dumps(dict(sorted(labels.items())), ensure_ascii=False, separators=(",", ":"))


def parse_labels_key(text: str) -> dict[str, str]:
    return json.loads(text) if text else {}


# --- humanising values for people -------------------------------------------

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
