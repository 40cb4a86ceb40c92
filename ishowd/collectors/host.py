"""Host readings: CPU, memory, swap, free disk space and file-system size.

CPU and memory come from ``stat`` and ``meminfo`` under ``[host] procfs_root``, read
as psutil reckons them (``cpu_percent``, ``virtual_memory``): busy is the total less
idle and iowait, guest time already counted in user and nice, each field's delta
clamped at zero; used memory is total less ``MemAvailable``. Read here in a few
lines, not through psutil: its parse and objects were half of an idle tick's
CPU (1.3 of 2.8 ms, cold) and its import about 1 MB of the daemon's memory. psutil
stays for a kernel older than 3.14, which lacks ``MemAvailable``.
"""
from __future__ import annotations

import os
import time
from typing import Iterable, Optional

from ..metrics import Sample
from ..paths import meminfo_kb, proc_path
from ..specs.host import CPU, DISK_FREE, DISK_TOTAL, MEM_AVAILABLE, MEM_TOTAL, MEM_USED, SWAP_USED
from . import Collector, TickContext, register
from ._sysfs import KeptFile

KIB = 1024
# /proc/stat's cpu line: user nice system idle iowait irq softirq steal guest guest_nice
_IDLE, _IOWAIT, _GUEST, _GUEST_NICE = 3, 4, 8, 9


def cpu_times(stat: bytes) -> Optional[tuple[int, ...]]:
    """The first line of /proc/stat, in clock ticks (up to guest_nice), or None."""
    line = stat[:stat.find(b"\n")] if b"\n" in stat else stat
    f = line.split()
    if len(f) < 5 or f[0] != b"cpu":
        return None
    try:
        return tuple(int(v) for v in f[1:11])
    except ValueError:
        return None


def busy_percent(t1: tuple[int, ...], t2: tuple[int, ...]) -> float:
    """CPU time in use between two readings, as psutil's ``cpu_percent`` has it."""
    d = [max(0, b - a) for a, b in zip(t1, t2)]
    total = sum(d) - sum(d[_GUEST:_GUEST_NICE + 1])
    busy = total - d[_IDLE] - (d[_IOWAIT] if len(d) > _IOWAIT else 0)
    return round(busy / total * 100, 1) if total else 0.0


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
        self._stat = KeptFile(str(proc_path(self.config, "stat")))
        self._meminfo = KeptFile(str(proc_path(self.config, "meminfo")))
        self._mounts: list[str] | None = None
        self._cpu: Optional[tuple[int, ...]] = None
        self._cpu_at = 0.0
        self._read_cpu()
        return None

    def _read_cpu(self) -> Optional[tuple[int, ...]]:
        try:
            times = cpu_times(self._stat.read())
        except OSError:
            times = None  # no /proc/stat: cpu is absent, the rest still reads
        if times is not None:
            self._cpu, self._cpu_at = times, time.monotonic()
        return times

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
        out = []
        before = self._cpu
        if before is None:
            self._read_cpu()
        else:
            # A reading over a few microseconds is noise (``run --once`` right after setup): take 0.1 s.
            short = 0.1 - (time.monotonic() - self._cpu_at)
            if short > 0:
                time.sleep(short)
            now = self._read_cpu()
            if now is None:
                self._cpu = None
            elif len(now) == len(before):
                out.append(Sample(CPU, busy_percent(before, now)))
        try:
            kb = meminfo_kb(self._meminfo.read().decode("ascii", "replace"),
                            "MemTotal", "MemAvailable", "SwapTotal", "SwapFree")
        except OSError:
            kb = {}
        total = kb.get("MemTotal")
        available = kb["MemAvailable"] * KIB if "MemAvailable" in kb else self._available_by_psutil(total)
        if total is not None and available is not None:
            out += [Sample(MEM_USED, float(total * KIB - available)), Sample(MEM_AVAILABLE, float(available)),
                    Sample(MEM_TOTAL, float(total * KIB))]
        if "SwapTotal" in kb and "SwapFree" in kb:
            out.append(Sample(SWAP_USED, float((kb["SwapTotal"] - kb["SwapFree"]) * KIB)))
        if self._mounts is None:
            self._mounts = self._discover_mounts()
        for m in self._mounts:
            try:
                st = os.statvfs(m)
            except OSError:
                self._mounts = None  # re-discover next tick; this path is absent for this one
                continue
            labels = {"path": m}
            out += [Sample(DISK_FREE, float(st.f_bavail * st.f_frsize), labels),
                    Sample(DISK_TOTAL, float(st.f_blocks * st.f_frsize), labels)]
        return out

    def close(self) -> None:
        self._stat.close()
        self._meminfo.close()

    def _available_by_psutil(self, total_kb: Optional[int]) -> Optional[int]:
        """A kernel without ``MemAvailable`` (before 3.14): psutil estimates it from the zones."""
        if total_kb is None:
            return None
        import warnings
        try:
            import psutil
            saved, psutil.PROCFS_PATH = psutil.PROCFS_PATH, self.config.host.procfs_root
            try:
                with warnings.catch_warnings():   # about fields left out of its estimate: not ours to say
                    warnings.simplefilter("ignore")
                    return int(psutil.virtual_memory().available)
            finally:
                psutil.PROCFS_PATH = saved
        except Exception:  # no estimate: memory is absent this tick, the rest still reads
            return None
