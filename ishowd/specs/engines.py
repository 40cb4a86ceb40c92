"""The Jetson's engines other than the CPU, GPU and EMC (VIC, NVENC, NVDEC, DLA, ...) where devfreq shows
them. Read by ``ishowd/collectors/engines.py``."""
from __future__ import annotations

from ..metrics import declare

ENGINE_FREQ = declare("engine_frequency_hz", "hertz", "Current clock of an engine (devfreq cur_freq; label: the "
                      "devfreq device name, e.g. 15340000.vic).", ("engine",), group="clocks")
ENGINE_FREQ_CAP = declare("engine_frequency_cap_hz", "hertz", "The highest clock the engine's governor may use now "
                          "(devfreq max_freq; nvpmodel lowers it).", ("engine",), group="clocks")
ENGINE_FREQ_MAX = declare("engine_frequency_max_hz", "hertz", "The engine's true maximum clock (the highest devfreq "
                          "available_frequencies entry).", ("engine",), group="clocks")

METRICS = (ENGINE_FREQ, ENGINE_FREQ_CAP, ENGINE_FREQ_MAX)
