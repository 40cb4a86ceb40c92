"""Host readings through psutil: CPU, memory, swap, free disk space and file-system size.

psutil reads procfs through ``psutil.PROCFS_PATH``, which follows
``[host] procfs_root``.
"""
from __future__ import annotations

import os
from typing import Iterable

from ..metrics import Sample
from ..paths import meminfo_kb, proc_path
from ..specs.host import CPU, DISK_FREE, DISK_TOTAL, MEM_AVAILABLE, MEM_TOTAL, MEM_USED, SWAP_USED
from . import Collector, TickContext, register


def mount_point(path: str) -> str:
    """The mount point of the file system holding ``path`` (walks up while st_dev stays)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    dev = os.stat(path).st_dev
    while True:
        parent = os.path.dirname(path)
        if parent == path or os.stat(parent).st_dev != dev:
            return path
        path = parent


def watched_paths(config) -> list[str]:
    """The store's directory, each backend log's directory, and [host] disk_paths."""
    from ..paths import store_path
    paths = [os.path.dirname(store_path(config))]
    rtf = config.sections.get("rtf")
    if rtf is not None:
        paths += [os.path.dirname(p) for p in rtf.get("logs", [])]
    return paths + list(config.host.disk_paths)


@register
class HostCollector(Collector):
    name = "host"
    metrics = (CPU, MEM_USED, MEM_AVAILABLE, MEM_TOTAL, SWAP_USED, DISK_FREE, DISK_TOTAL)

    def setup(self):
        import psutil
        # psutil reads procfs through a module global; it is put back on close()
        self._saved_procfs = psutil.PROCFS_PATH
        psutil.PROCFS_PATH = self.config.host.procfs_root
        self._psutil = psutil
        self._mounts: list[str] | None = None
        self._primed_at = None
        self._prime_cpu()
        return None

    def _prime_cpu(self) -> None:
        import time
        try:
            self._psutil.cpu_percent(interval=None)  # the first reading is since this call
            self._primed_at = time.monotonic()
        except OSError:
            self._primed_at = None  # no /proc/stat: cpu is absent, the rest still reads

    def close(self) -> None:
        self._psutil.PROCFS_PATH = self._saved_procfs

    def _discover_mounts(self) -> list[str]:
        mounts = []
        for p in watched_paths(self.config):
            try:
                m = mount_point(p)
            except OSError:
                continue
            if m not in mounts:
                mounts.append(m)
        return mounts

    def collect(self, ctx: TickContext) -> Iterable[Sample]:
        import time
        ps, out = self._psutil, []
        if self._primed_at is None:
            self._prime_cpu()
        else:
            # A reading over a few microseconds is noise (``run --once`` right after setup): take 0.1 s.
            short = 0.1 - (time.monotonic() - self._primed_at)
            try:
                out.append(Sample(CPU, ps.cpu_percent(interval=short if short > 0 else None)))
            except OSError:
                self._primed_at = None
        try:
            vm = ps.virtual_memory()
            out += [Sample(MEM_USED, float(vm.total - vm.available)), Sample(MEM_AVAILABLE, float(vm.available)),
                    Sample(MEM_TOTAL, float(vm.total))]
        except OSError:
            pass  # each source costs only its own metrics
        # as psutil's swap_memory() has it (SwapTotal - SwapFree), without the parse of all of
        # /proc/vmstat it makes for counters not used here
        try:
            swap = meminfo_kb(proc_path(self.config, "meminfo").read_text(), "SwapTotal", "SwapFree")
        except OSError:
            swap = {}
        if len(swap) == 2:
            out.append(Sample(SWAP_USED, float((swap["SwapTotal"] - swap["SwapFree"]) * 1024)))
        if self._mounts is None:
            self._mounts = self._discover_mounts()
        for m in self._mounts:
            try:
                st = os.statvfs(m)
            except OSError:
                self._mounts = None  # re-discover next tick; this path is absent for this one
                continue
            out += [Sample(DISK_FREE, float(st.f_bavail * st.f_frsize), {"path": m}),
                    Sample(DISK_TOTAL, float(st.f_blocks * st.f_frsize), {"path": m})]
        return out
