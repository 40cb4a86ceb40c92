"""What every GPU collector shares: the GPU metrics, the ``[gpu]`` config section,
and the discovery of a Jetson's GPU through devfreq.

The GPU metrics are declared once here because several sources emit them
(Jetson sysfs, the Jetson thermal zone and meminfo, NVML). On any host the
``gpu`` label is stable across ticks and reboots:

* Jetson: the devfreq device name (``17000000.gpu`` on JetPack 6,
  ``17000000.ga10b`` on JetPack 5 and the ``gpu.0`` layout, ``17000000.gv11b``
  on Xavier, ``57000000.gpu`` on Nano). The kernel derives it from the device
  tree, so it only changes when the board or its L4T major release does.
* NVML: the GPU's UUID (``GPU-…``), which follows the board itself; NVML's
  index order is documented as not stable across reboots.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import Key, section
from ..metrics import declare
from ..paths import sys_path
from ._sysfs import listdir, try_str

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

section("gpu", {
    "nvml": Key("str", "auto", 'read desktop/server NVIDIA GPUs through NVML (pip install "ishowd[nvml]"): '
                '"auto" skips NVML on a Jetson, whose GPU is read from sysfs; "on" always tries; "off" never',
                choices=("auto", "on", "off")),
    "nvpmodel_path": Key("path", "", 'the nvpmodel command; "" searches $PATH, /usr/sbin and /usr/bin'),
    "nvpmodel_interval": Key("duration", "1h", "how often `nvpmodel -q` is run again (it is a subprocess)", min=60),
    "nvpmodel_timeout": Key("duration", "5s", "how long `nvpmodel -q` may take", min=0.1),
    "jtop": Key("str", "auto", 'use jetson-stats (AGPL-3.0, pip install "ishowd[jtop]") where jtop.service runs: '
                '"auto" or "off"', choices=("auto", "off")),
    "jtop_socket": Key("path", "/run/jtop.sock", "the socket jtop.service listens on; jtop is used only when it exists"),
})

# Device-tree node names of Jetson GPUs (jetson-stats matches the same, and any name containing "gpu").
GPU_NODE_NAMES = frozenset({"gv11b", "gp10b", "ga10b", "gb10b", "gpu"})


def is_gpu_node(name: str) -> bool:
    return name in GPU_NODE_NAMES or "gpu" in name


@dataclass(frozen=True)
class JetsonGpu:
    label: str      # the devfreq entry's name: the ``gpu`` label
    node: str       # the device-tree node name (gpu, ga10b, gv11b, ...)
    devfreq: str    # real path of the devfreq directory (cur_freq, min_freq, max_freq, ...)
    device: str     # real path of the device directory (load)


def find_jetson_gpus(config) -> list[JetsonGpu]:
    """Every devfreq device whose device-tree node is a GPU, sorted by name.

    ``/sys/class/devfreq/*`` are symlinks; ``<entry>/device`` links to the GPU
    device, whose ``of_node/name`` holds the node name. Nothing is hard-coded,
    so the JetPack 6 (``bus@0/17000000.gpu``), JetPack 5, Xavier, Nano and
    ``gpu.0`` layouts are all found the same way.
    """
    base = str(sys_path(config, "class", "devfreq"))
    gpus = []
    for entry in listdir(base):
        link = os.path.join(base, entry)
        node = try_str(os.path.join(link, "device", "of_node", "name"))
        if node is None or not is_gpu_node(node):
            continue
        gpus.append(JetsonGpu(label=entry, node=node, devfreq=os.path.realpath(link),
                              device=os.path.realpath(os.path.join(link, "device"))))
    return gpus


def jetson_gpu_label(config) -> str | None:
    """The ``gpu`` label of this Jetson's GPU (the first found), or None when there is none."""
    gpus = find_jetson_gpus(config)
    return gpus[0].label if gpus else None
