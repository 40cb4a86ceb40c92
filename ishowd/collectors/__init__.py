"""Collectors: one module per source, each registering itself.

A collector declares its metrics up front (``ishowd.metrics.declare``) and,
on each tick it is due, returns samples. A collector that raises loses its
own metrics for that tick, never the tick. Adding a source is adding a module
to this package: ``load_all()`` imports every module in it.

The interface, small on purpose::

    @register
    class ThermalCollector(Collector):
        name = "thermal"
        metrics = (TEMPERATURE, GPU_TEMPERATURE)

        def collect(self, ctx):            # -> iterable of Sample
            ...

``setup()`` runs once at start and may return a reason string when the
source does not exist on this host (no NVML driver, no devfreq GPU): the
collector is then skipped quietly and says so once in the log.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Optional

from ..metrics import Metric, Sample
from ..plugins import Registry

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Config


@dataclass
class TickContext:
    """What a collector may know about the tick it runs in."""
    now: float          # wall-clock time of the tick (UTC seconds)
    config: "Config"


class Collector:
    #: short stable name, used as the ``collector`` label of the daemon's own metrics
    name: str = ""
    #: every metric this collector can emit
    metrics: tuple[Metric, ...] = ()
    #: run every N ticks (1 = each tick); for sources that are costly to read
    every: int = 1

    def __init__(self, config: "Config"):
        self.config = config

    def setup(self) -> Optional[str]:
        """Prepare (discover paths, open handles). Return a reason to be skipped, or None."""
        return None

    def collect(self, ctx: TickContext) -> Iterable[Sample]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass


_REGISTRY: Registry["Collector"] = Registry(__name__, "collector")
COLLECTORS = _REGISTRY.classes
register = _REGISTRY.register
load_all = _REGISTRY.load_all


# The daemon's own cost and health, one series per collector and tick.
from ..metrics import declare  # noqa: E402

COLLECTOR_DURATION = declare("ishowd_collector_duration_seconds", "seconds",
                             "Wall time the collector took this tick.", ("collector",), group="daemon")
COLLECTOR_SUCCESS = declare("ishowd_collector_success", "boolean",
                            "1 when the collector ran without error this tick, else 0.", ("collector",), group="daemon")
