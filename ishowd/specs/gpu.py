"""The GPU: its metrics and the ``[gpu]`` keys.

The GPU metrics are declared once here because several sources emit them
(Jetson sysfs, the Jetson thermal zone and meminfo, NVML: ``ishowd/collectors/
jetson_gpu.py``, ``thermal.py``, ``gpu_memory.py``, ``nvml.py``). On any host the
``gpu`` label is stable across ticks and reboots (see ``collectors/_gpu.py``).
"""
from __future__ import annotations

from ..config import Key
from ..metrics import declare

GPU_UTIL = declare("gpu_utilization_percent", "percent",
                   "GPU busy time (Jetson: devfreq load, per-mille / 10; NVML: utilization.gpu).",
                   ("gpu",), group="gpu")
GPU_FREQ = declare("gpu_frequency_hz", "hertz", "Current GPU (graphics) clock.", ("gpu",), group="gpu")
GPU_FREQ_MAX = declare("gpu_frequency_max_hz", "hertz",
                       "The GPU's true maximum clock (Jetson: the highest available_frequencies entry; "
                       "NVML: max graphics clock), not the current nvpmodel cap.", ("gpu",), group="gpu")
GPU_FREQ_CAP = declare("gpu_frequency_cap_hz", "hertz",
                       "Jetson devfreq max_freq: the highest clock the governor may use now "
                       "(nvpmodel lowers it in non-MAXN modes).", ("gpu",), group="gpu")
GPU_FREQ_FLOOR = declare("gpu_frequency_floor_hz", "hertz",
                         "Jetson devfreq min_freq: the lowest clock the governor may use "
                         "(jetson_clocks raises it to the cap).", ("gpu",), group="gpu")
GPU_LOCKED = declare("gpu_frequency_locked", "boolean",
                     "1 when the GPU clock is held at its true maximum, else 0 "
                     "(Jetson: min_freq == max_freq == max(available_frequencies); "
                     "NVML: graphics clock == max graphics clock this tick).", ("gpu",), group="gpu")
GPU_MEM_USED = declare("gpu_memory_used_bytes", "bytes",
                       "GPU memory in use (Jetson: NvMapMemUsed, the shared memory nvmap handed out; NVML: used).",
                       ("gpu",), group="gpu")
GPU_MEM_TOTAL = declare("gpu_memory_total_bytes", "bytes",
                        "GPU memory (Jetson: MemTotal, as the GPU shares system memory; NVML: total).",
                        ("gpu",), group="gpu")
GPU_TEMP = declare("gpu_temperature_celsius", "celsius",
                   "GPU temperature (Jetson: the gpu-thermal / GPU-therm zone; NVML: GPU core sensor).",
                   ("gpu",), group="gpu")
CLOCK_EVENT = declare("gpu_clock_event_reason", "boolean",
                      "1 while this reason holds the GPU clock down (NVML clock event reasons: gpu_idle, "
                      "sw_power_cap, hw_slowdown, sw_thermal_slowdown, hw_thermal_slowdown, ...), else 0.",
                      ("gpu", "reason"), group="gpu")
MEM_RESERVED = declare("gpu_memory_reserved_bytes", "bytes",
                       "GPU memory the driver reserves for itself (NVML v2; not part of gpu_memory_used_bytes).",
                       ("gpu",), group="gpu")

KEYS = {"gpu": {
    "nvml": Key("str", "auto", 'read desktop/server NVIDIA GPUs through NVML (pip install "ishowd[nvml]"): '
                '"auto" skips NVML on a Jetson, whose GPU is read from sysfs; "on" always tries; "off" never',
                choices=("auto", "on", "off")),
    "nvpmodel_path": Key("path", "", 'the nvpmodel command; "" searches $PATH, /usr/sbin and /usr/bin'),
    "nvpmodel_interval": Key("duration", "1h", "how often `nvpmodel -q` is run again (it is a subprocess)",
                             min=60, max=86400),
    # it runs inside a sampling tick: longer would hold the tick up
    "nvpmodel_timeout": Key("duration", "5s", "how long `nvpmodel -q` may take", min=0.1, max=60),
    "jtop": Key("str", "auto", 'use jetson-stats (AGPL-3.0, pip install "ishowd[jtop]") where jtop.service runs: '
                '"auto" or "off"', choices=("auto", "off")),
    "jtop_socket": Key("path", "/run/jtop.sock", "the socket jtop.service listens on; jtop is used only when it exists"),
}}

METRICS = (GPU_UTIL, GPU_FREQ, GPU_FREQ_MAX, GPU_FREQ_CAP, GPU_FREQ_FLOOR, GPU_LOCKED, GPU_MEM_USED, GPU_MEM_TOTAL,
           GPU_TEMP, CLOCK_EVENT, MEM_RESERVED)
