"""Memory the Jetson GPU uses: ``gpu_memory_used_bytes`` and ``gpu_memory_total_bytes``.

A Jetson's GPU shares system RAM. ``NvMapMemUsed`` in ``/proc/meminfo`` (kB)
is the memory nvmap has handed out (what jetson-stats shows as GPU "shared"
memory); the total is ``MemTotal``. Read under ``[host] procfs_root``, only
on a host where a Jetson devfreq GPU exists (its label is the ``gpu`` label);
desktop GPUs get both figures from NVML instead.
"""
from __future__ import annotations

from typing import Iterable

from ..metrics import Sample
from ..paths import meminfo_kb, proc_path
from ..specs.gpu import GPU_MEM_TOTAL, GPU_MEM_USED
from . import Collector, TickContext, register
from ._gpu import jetson_gpu_label
from ._sysfs import KeptFile


@register
class JetsonGpuMemoryCollector(Collector):
    name = "gpu_memory"
    metrics = (GPU_MEM_USED, GPU_MEM_TOTAL)

    def setup(self):
        self._meminfo = None
        self._label = jetson_gpu_label(self.config)
        if self._label is None:
            return "no Jetson GPU (desktop GPUs: NVML)"
        self._meminfo = KeptFile(str(proc_path(self.config, "meminfo")))
        try:
            found = meminfo_kb(self._meminfo.read().decode("ascii", "replace"), "NvMapMemUsed", "MemTotal")
        except OSError as exc:
            return f"cannot read {self._meminfo.path}: {exc.strerror or exc}"
        if "NvMapMemUsed" not in found:
            self._meminfo.close()      # the daemon drops a part not set up without closing it
            return "no NvMapMemUsed in meminfo (not an nvmap kernel)"
        return None

    def close(self) -> None:
        if self._meminfo is not None:
            self._meminfo.close()

    def collect(self, ctx: TickContext) -> Iterable[Sample]:
        try:
            text = self._meminfo.read().decode("ascii", "replace")
        except OSError:
            return []
        kb = meminfo_kb(text, "NvMapMemUsed", "MemTotal")
        labels = {"gpu": self._label}
        out = []
        if "NvMapMemUsed" in kb:
            out.append(Sample(GPU_MEM_USED, kb["NvMapMemUsed"] * 1024.0, labels))
        if "MemTotal" in kb:
            out.append(Sample(GPU_MEM_TOTAL, kb["MemTotal"] * 1024.0, labels))
        return out
