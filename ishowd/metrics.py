"""Metrics as data: ``Metric`` (name, unit, help, labels, kind, group), ``Sample``, ``Registry``.

A metric is declared once, up front, as a module-level ``Metric`` in the
module that declares its source (``ishowd/specs/``):
plain data, importable without the code that reads the hardware. The catalog
(``ishowd/catalog.py``) gathers every declaration into one ``Registry`` and hands
it to the daemon, the exporter and the CLI; this module imports no plug-in.
"""
from __future__ import annotations

import json
from types import MappingProxyType
from typing import Iterable, Mapping, NamedTuple

# Units are SI and named in the metric name (the README lists every metric).
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


# Metric and Sample are named tuples, not dataclasses: immutable records either way, and a
# dataclass costs 0.3-0.4 ms to define (every ishowctl call pays for each) and a frozen one's
# construction is several times slower (the daemon builds a Sample per reading).

class Metric(NamedTuple):
    name: str
    unit: str
    help: str
    labels: tuple = ()
    # "gauge" for a reading, "counter" for a running total (an exporter needs this); "histogram"
    # for a per-event value: stored as samples like a gauge, exported as buckets over ``buckets``.
    kind: str = "gauge"
    # The group `ishowctl status` shows the metric under (host, gpu, thermal, ...).
    group: str = "host"
    # A histogram's upper bounds, ascending (+Inf is implied).
    buckets: tuple = ()


def declare(name: str, unit: str, help: str, labels: Iterable[str] = (), *,
            kind: str = "gauge", group: str = "host", buckets: Iterable[float] = ()) -> Metric:
    """A ``Metric``, checked; a module lists the ones it declares in its ``METRICS`` for the catalog."""
    if unit not in UNITS:
        raise ValueError(f"metric {name}: unknown unit {unit!r}")
    if kind not in ("gauge", "counter", "histogram"):
        raise ValueError(f"metric {name}: kind must be gauge, counter or histogram")
    buckets = tuple(float(b) for b in buckets)
    if (kind == "histogram") != bool(buckets) or list(buckets) != sorted(set(buckets)) \
            or any(b != b or b == float("inf") for b in buckets):
        raise ValueError(f"metric {name}: a histogram, and only one, has finite buckets in ascending order")
    return Metric(name, unit, help, tuple(labels), kind, group, buckets)


class Registry(dict):
    """Every declared metric by name (a dict), filled by the catalog from the declaring modules."""

    def add(self, metrics: Iterable[Metric], where: str = "") -> None:
        for m in metrics:
            known = self.get(m.name)
            if known is not None and known != m:
                raise ValueError(f"metric {m.name} declared twice with different definitions ({where})")
            self[m.name] = m


NO_LABELS: Mapping[str, str] = MappingProxyType({})


class Sample(NamedTuple):
    """One reading. ``ts`` is None for "this tick"; set it for per-event samples."""
    metric: Metric
    value: float
    labels: Mapping[str, str] = NO_LABELS
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


def labels_text(labels: Mapping[str, str]) -> str:
    """Labels as people read them after a metric name: ``{zone=gpu-thermal,gpu=gpu0}`` ("" for none)."""
    return "{" + ",".join(f"{k}={v}" for k, v in labels.items()) + "}" if labels else ""
