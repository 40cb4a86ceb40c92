"""Collectors: one module per source, each registering itself.

A collector names its metrics up front (``metrics``, declared as data in
``ishowd/specs/``) and, on each tick it is due, returns samples. A collector
that raises loses its own metrics for that tick, never the tick. Adding a
source is adding a module here, its spec in ``ishowd/specs/``, and a line in
``ishowd/catalog.py``, the one place that imports collector modules.

The interface, small on purpose::

    @register
    class ThermalCollector(Collector):
        name = "thermal"
        metrics = (TEMPERATURE, GPU_TEMP)

        def collect(self, ctx):            # -> iterable of Sample
            ...

``setup()`` runs once at start and may return a reason string when the
source does not exist on this host (no NVML driver, no devfreq GPU): the
collector is then skipped quietly and says so once in the log.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from ..metrics import Metric, Sample
from ..parts import Part, Registry

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Config


@dataclass
class TickContext:
    """What a collector may know about the tick it runs in."""
    now: float          # wall-clock time of the tick (UTC seconds)
    config: "Config"


class Collector(Part):
    kind = "collector"
    #: every metric this collector can emit
    metrics: tuple[Metric, ...] = ()
    #: run every N ticks (1 = each tick); for sources that are costly to read
    every: int = 1

    def __init__(self, config: "Config"):
        self.config = config

    def collect(self, ctx: TickContext) -> Iterable[Sample]:  # pragma: no cover - abstract
        raise NotImplementedError


REGISTRY: Registry["Collector"] = Registry("collector")
register = REGISTRY.register
