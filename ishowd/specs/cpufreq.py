"""CPU clocks through cpufreq, and whether jetson_clocks holds them. Read by ``ishowd/collectors/cpufreq.py``."""
from __future__ import annotations

from ..metrics import declare

CPU_FREQ = declare("cpu_frequency_hz", "hertz", "Current clock of an online core (cpufreq scaling_cur_freq).",
                   ("cpu",), group="clocks")
CPU_FREQ_MAX = declare("cpu_frequency_max_hz", "hertz",
                       "The core's true maximum clock (cpufreq cpuinfo_max_freq), not the power mode's cap.",
                       ("cpu",), group="clocks")
CPU_LOCKED = declare("cpu_frequency_locked", "boolean",
                     "1 when every online core is pinned at its true maximum (scaling_min_freq == scaling_max_freq "
                     "== cpuinfo_max_freq: what jetson_clocks does in MAXN), else 0.", group="clocks")

METRICS = (CPU_FREQ, CPU_FREQ_MAX, CPU_LOCKED)
