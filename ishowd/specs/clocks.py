"""Jetson clocks as jetson-stats reports them. Read by ``ishowd/collectors/jtop.py``."""
from __future__ import annotations

from ..metrics import declare

EMC_FREQ = declare("emc_frequency_hz", "hertz", "External memory controller clock (jetson-stats).", group="clocks")
EMC_FREQ_MAX = declare("emc_frequency_max_hz", "hertz", "External memory controller maximum clock (jetson-stats).",
                       group="clocks")
EMC_UTIL = declare("emc_utilization_percent", "percent", "External memory controller load (jetson-stats).",
                   group="clocks")
JETSON_CLOCKS = declare("jetson_clocks_active", "boolean",
                        "1 when jetson_clocks holds the clocks at maximum, as jetson-stats reports it.",
                        group="clocks")

METRICS = (EMC_FREQ, EMC_FREQ_MAX, EMC_UTIL, JETSON_CLOCKS)
