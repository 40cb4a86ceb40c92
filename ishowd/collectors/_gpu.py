"""What every GPU collector shares: the discovery of a Jetson's GPU through devfreq.

The GPU metrics and the ``[gpu]`` keys are in ``ishowd/specs/gpu.py``. On any host the
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

from ..paths import sys_path
from ._sysfs import listdir, try_str

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
