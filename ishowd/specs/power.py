"""Power: rails (INA3221 on Jetson, board power through NVML) and the nvpmodel power mode.

Read by ``ishowd/collectors/power.py``, ``nvml.py`` and ``nvpmodel.py``."""
from __future__ import annotations

from ..metrics import declare

POWER = declare("power_watts", "watts",
                "Power drawn on a rail: INA3221 bus voltage × current on Jetson (rail \"total\": the input rail), "
                "board power through NVML.", ("rail",), group="power")
POWER_MODE = declare("power_mode_id", "count",
                     "The nvpmodel power mode id (label mode: its name, e.g. MAXN), from `nvpmodel -q`.",
                     ("mode",), group="power")

METRICS = (POWER, POWER_MODE)
