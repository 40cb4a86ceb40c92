"""The daemon's own cost and health, one series per collector and tick (``ishowd/daemon.py``)."""
from __future__ import annotations

from ..metrics import declare

COLLECTOR_DURATION = declare("ishowd_collector_duration_seconds", "seconds",
                             "Wall time the collector took this tick.", ("collector",), group="daemon")
COLLECTOR_SUCCESS = declare("ishowd_collector_success", "boolean",
                            "1 when the collector ran without error this tick, else 0.", ("collector",), group="daemon")
# Served by /metrics itself, never stored: which ishowd each box of a fleet runs.
BUILD_INFO = declare("ishowd_build_info", "boolean", "Always 1; version is the running ishowd's.", ("version",),
                     group="daemon")

METRICS = (COLLECTOR_DURATION, COLLECTOR_SUCCESS, BUILD_INFO)
