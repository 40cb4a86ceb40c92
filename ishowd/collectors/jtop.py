"""jetson-stats (``jtop.service``): what plain sysfs cannot read without root.

Optional: jetson-stats is AGPL-3.0, so it is an extra (``pip install
'ishowd[jtop]'``), imported only here and only when ``[gpu] jtop_socket``
(``/run/jtop.sock``, the socket ``jtop.service`` listens on) exists. Every
other hardware collector works without it.

From its client API (which reads the service's shared data; no root needed
beyond membership of the ``jtop`` group):

* ``jetson.memory["EMC"]``: ``cur``/``max`` (kHz) -> ``emc_frequency_hz``,
  ``emc_frequency_max_hz``; ``val`` (%) -> ``emc_utilization_percent``
  (from debugfs, root only without jtop)
* ``jetson.jetson_clocks`` -> ``jetson_clocks_active`` (jtop runs
  ``jetson_clocks --show`` as root)
"""
from __future__ import annotations

import logging
import os
from typing import Any, Iterable, Optional

from ..metrics import Sample
from ..specs.clocks import EMC_FREQ, EMC_FREQ_MAX, EMC_UTIL, JETSON_CLOCKS
from . import Collector, TickContext, register

log = logging.getLogger(__name__)


@register
class JtopCollector(Collector):
    name = "jtop"
    metrics = (EMC_FREQ, EMC_FREQ_MAX, EMC_UTIL, JETSON_CLOCKS)

    def setup(self) -> Optional[str]:
        self._jetson = None
        gpu = self.config.sections.get("gpu", {})
        if (gpu.get("jtop") or "auto") == "off":
            return 'disabled ([gpu] jtop = "off")'
        sock = gpu.get("jtop_socket") or "/run/jtop.sock"
        if not os.path.exists(sock):
            return f"jtop.service is not running (no {sock})"
        try:
            from jtop import jtop  # AGPL-3.0 optional extra: imported only here
        except ImportError:
            return "jetson-stats is not installed (optional, AGPL-3.0: pip install 'ishowd[jtop]')"
        try:
            jetson = jtop()
            jetson.start()
        except Exception as exc:  # JtopException: service inactive, permission denied, version mismatch
            return f"jtop.service is not reachable ({exc})"
        self._jetson = jetson
        return None

    def close(self) -> None:
        if getattr(self, "_jetson", None) is not None:
            try:
                self._jetson.close()
            except Exception:  # pragma: no cover
                pass
            self._jetson = None

    def collect(self, ctx: TickContext) -> Iterable[Sample]:
        j = self._jetson
        out: list[Sample] = []
        emc = _emc(j)
        if emc:
            if _number(emc.get("cur")) and emc["cur"] > 1:  # jtop initialises cur to 1 when unreadable
                out.append(Sample(EMC_FREQ, emc["cur"] * 1000.0))
            if _number(emc.get("max")):
                out.append(Sample(EMC_FREQ_MAX, emc["max"] * 1000.0))
            if _number(emc.get("val")):
                out.append(Sample(EMC_UTIL, float(emc["val"])))
        jc = getattr(j, "jetson_clocks", None)
        if jc is not None:
            out.append(Sample(JETSON_CLOCKS, 1.0 if bool(jc) else 0.0))
        return out


def _emc(j: Any) -> dict:
    try:
        emc = j.memory["EMC"]
    except (KeyError, TypeError, AttributeError):
        return {}
    return emc if isinstance(emc, dict) else {}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
