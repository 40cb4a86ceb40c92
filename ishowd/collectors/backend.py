"""The backend: is it up (``GET /api/health``), and its process's resident memory.

``backend_up`` comes from a probe of ``/api/health`` with a short timeout at
its own interval (``[backend] health_interval``, 30 s: every probe adds two
lines to the backend's log, and the web UI already polls every 30 s). The
probe runs in a thread of its own, so a hung backend never holds up a tick;
each tick reports the latest answer while it is fresh. Only the very first
tick (``ishowd run --once`` included) waits for its probe.

``backend_rss_bytes``: ``pgrep -f ishowtts-backend`` also matches ``cargo
build -p ishowtts-backend`` and Linux truncates the name to
``ishowtts-backen``, so the process is the one whose ``/proc/PID/exe`` is
``[backend] binary`` (``(deleted)`` after a rebuild still counts). Where
``exe`` cannot be read (another user's process without CAP_SYS_PTRACE), its
argv[0] must name the same path and its comm the same (truncated) name. No
process: no sample.
"""
from __future__ import annotations

import json
import os
import threading
import time
from typing import Iterable, Optional

from ..metrics import Sample
from ..specs.backend import BACKEND_RSS, BACKEND_UP
from . import Collector, TickContext, register


RESCAN_SECONDS = 30.0   # a full /proc scan at most this often while the backend is not found


class Down(Exception):
    """The backend did not answer its health check ok; ``str()`` says how, in one line."""


def health(url: str, timeout: float) -> dict:
    """``GET /api/health``'s answer when it is 200 with status ok; else raises ``Down``."""
    import urllib.error
    import urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    try:
        with opener.open(url.rstrip("/") + "/api/health", timeout=timeout) as resp:
            if resp.status != 200:
                raise Down(f"GET /api/health answered HTTP {resp.status}")
            raw = resp.read(65536)
    except urllib.error.HTTPError as exc:
        raise Down(f"GET /api/health answered HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise Down(_reason(exc.reason, timeout)) from None
    except Exception as exc:  # timed out, reset mid-answer, a broken status line
        raise Down(_reason(exc, timeout)) from None
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("status") != "ok":
        raise Down(f"GET /api/health answered {raw[:80]!r}, not status ok")
    return body


def _reason(exc, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def probe(url: str, timeout: float) -> float:
    """1.0 when the health endpoint answers 200 with status ok, else 0.0. Never raises."""
    try:
        health(url, timeout)
    except Exception:  # refused, timed out, reset, not JSON: all mean "not up"
        return 0.0
    return 1.0


@register
class Backend(Collector):
    name = "backend"
    metrics = (BACKEND_UP, BACKEND_RSS)

    def setup(self) -> Optional[str]:
        cfg = self.config.backend
        self.url, self.timeout, self.probe_every = cfg.url, cfg.health_timeout, cfg.health_interval
        self._answer: Optional[tuple[float, float]] = None    # (value, monotonic time of the answer)
        self._probe_started = -1e18
        self._thread: Optional[threading.Thread] = None
        self.root = self.config.host.procfs_root
        given = cfg.binary
        self.targets = {given, os.path.realpath(given)}
        self.comm = os.path.basename(given)[:15]
        self.pid: Optional[int] = None
        self._scanned_at = -RESCAN_SECONDS
        return None

    # --- backend_up -------------------------------------------------------------------

    def _probe_now(self) -> None:
        self._answer = (probe(self.url, self.timeout), time.monotonic())

    def up(self) -> Optional[float]:
        now = time.monotonic()
        if self._answer is None and self._thread is None:
            self._probe_started = now
            self._probe_now()                                 # the first tick waits for its answer
        elif now - self._probe_started >= self.probe_every and (self._thread is None or not self._thread.is_alive()):
            self._probe_started = now
            self._thread = threading.Thread(target=self._probe_now, name="backend-health", daemon=True)
            self._thread.start()
        if self._answer is None or now - self._answer[1] > 2 * self.probe_every + self.timeout:
            return None                                       # no fresh answer: absent, not invented
        return self._answer[0]

    # --- backend_rss_bytes --------------------------------------------------------------

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

    def rss(self, now: float) -> Optional[float]:
        pid = self.find(now)
        if pid is None:
            return None
        try:
            with open(os.path.join(self.root, str(pid), "status"), "rb") as f:
                for line in f:
                    if line.startswith(b"VmRSS:"):
                        return float(int(line.split()[1]) * 1024)
        except (OSError, ValueError, IndexError):
            self.pid = None
        return None

    def collect(self, ctx: TickContext) -> Iterable[Sample]:
        out = []
        up = self.up()
        if up is not None:
            out.append(Sample(BACKEND_UP, up))
        rss = self.rss(ctx.now)
        if rss is not None:
            out.append(Sample(BACKEND_RSS, rss))
        return out


def backend_rss(config) -> Optional[float]:
    """The backend's resident memory now (bytes), found as the collector finds it; None when it is
    not running. For callers outside the tick (the benchmark): each call scans ``/proc`` afresh."""
    finder = Backend(config)
    finder.setup()
    return finder.rss(time.monotonic())
