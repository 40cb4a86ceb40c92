"""Thermal zones: ``temperature_celsius{zone}``. Read by ``ishowd/collectors/thermal.py``."""
from __future__ import annotations

from ..metrics import declare

TEMPERATURE = declare("temperature_celsius", "celsius", "Temperature of a thermal zone (label: the zone's type).",
                      ("zone",), group="thermal")

METRICS = (TEMPERATURE,)
