"""Fans: PWM duty and tachometer speed. Read by ``ishowd/collectors/fan.py`` (and NVML's fan speed)."""
from __future__ import annotations

from ..metrics import declare

FAN_PERCENT = declare("fan_speed_percent", "percent", "Fan PWM duty cycle (pwm × 100 / 255).", ("fan",), group="fan")
FAN_RPM = declare("fan_speed_rpm", "rpm", "Fan speed measured by a tachometer.", ("fan",), group="fan")

METRICS = (FAN_PERCENT, FAN_RPM)
