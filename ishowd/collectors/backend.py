"""The backend process's resident memory, found by its executable path.

``pgrep -f ishowtts-backend`` also matches ``cargo build -p ishowtts-backend``
and Linux truncates the name to ``ishowtts-backen``, so the process is the
one whose ``/proc/PID/exe`` is ``[backend] binary`` (``(deleted)`` after a
rebuild still counts). Where ``exe`` cannot be read (another user's process
without CAP_SYS_PTRACE), its argv[0] must name the same path and its comm
the same (truncated) name. No process: no sample.
"""
from __future__ import annotations

import os
from typing import Iterable, Optional

from ..metrics import Sample, declare
from . import Collector, TickContext, register

BACKEND_RSS = declare("backend_rss_bytes", "bytes", "Resident memory of the backend process (VmRSS).",
                      group="backend")
RESCAN_SECONDS = 30.0   # a full /proc scan at most this often while the backend is not found


@register
class BackendProcess(Collector):
    name = "backend"
    metrics = (BACKEND_RSS,)

    def setup(self) -> Optional[str]:
        self.root = self.config.host.procfs_root
        given = self.config.backend.binary
        self.targets = {given, os.path.realpath(given)}
        self.comm = os.path.basename(given)[:15]
        self.pid: Optional[int] = None
        self._scanned_at = -RESCAN_SECONDS
        return None

    def matches(self, pid: int) -> bool:
        base = os.path.join(self.root, str(pid))
        try:
            exe = os.readlink(os.path.join(base, "exe"))
        except FileNotFoundError:
            return False
        except OSError:
            exe = None
        if exe is not None:
            if exe.endswith(" (deleted)"):
                exe = exe[:-len(" (deleted)")]
            return exe in self.targets
        # exe unreadable: argv[0] and comm must both agree
        try:
            with open(os.path.join(base, "cmdline"), "rb") as f:
                argv0 = f.read(4096).split(b"\0", 1)[0].decode("utf-8", "replace")
            with open(os.path.join(base, "comm"), "rb") as f:
                comm = f.read(64).strip().decode("utf-8", "replace")
        except OSError:
            return False
        if comm != self.comm or not argv0:
            return False
        if os.path.isabs(argv0):
            return os.path.normpath(argv0) in self.targets
        rel = os.path.normpath(argv0)
        return any(t.endswith(os.sep + rel) for t in self.targets)

    def find(self, now: float) -> Optional[int]:
        if self.pid is not None and self.matches(self.pid):
            return self.pid
        self.pid = None
        if now - self._scanned_at < RESCAN_SECONDS:
            return None
        self._scanned_at = now
        try:
            pids = sorted(int(n) for n in os.listdir(self.root) if n.isdigit())
        except OSError:
            return None
        for pid in pids:
            if self.matches(pid):
                self.pid = pid
                return pid
        return None

    def collect(self, ctx: TickContext) -> Iterable[Sample]:
        pid = self.find(ctx.now)
        if pid is None:
            return []
        try:
            with open(os.path.join(self.root, str(pid), "status"), "rb") as f:
                for line in f:
                    if line.startswith(b"VmRSS:"):
                        parts = line.split()
                        return [Sample(BACKEND_RSS, float(int(parts[1]) * 1024))]
        except (OSError, ValueError, IndexError):
            self.pid = None
        return []
