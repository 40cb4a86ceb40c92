"""The running backend, seen from outside: its health endpoint and its process.

Both ``backend_up``/``backend_rss_bytes`` (``collectors/backend.py``, every
tick) and the benchmark (before and after its runs) look through these.

The process: ``pgrep -f ishowtts-backend`` also matches ``cargo build -p
ishowtts-backend`` and Linux truncates the name to ``ishowtts-backen``, so the
backend is the process whose ``/proc/PID/exe`` is ``[backend] binary``
(``(deleted)`` after a rebuild still counts). Where ``exe`` cannot be read
(another user's process without CAP_SYS_PTRACE), its argv[0] must name the same
path and its comm the same (truncated) name.
"""
from __future__ import annotations

import json
import os
from typing import Optional

RESCAN_SECONDS = 30.0   # a full /proc scan at most this often while the backend is not found


class Down(Exception):
    """The backend did not answer its health check ok; ``str()`` says how, in one line."""


def opener():
    """A urllib opener that never goes through a proxy: build it once and probe with it again."""
    import http.client
    import socket
    import urllib.request

    def connect(address, *args, **kwargs):
        # getaddrinfo() of a str host loads the idna codec (0.4 MB, kept for the daemon's life)
        # even for 127.0.0.1; an ASCII name goes as bytes, which it takes as they are
        host, port = address
        return socket.create_connection((host.encode("ascii") if host.isascii() else host, port),
                                        *args, **kwargs)

    class Connection(http.client.HTTPConnection):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._create_connection = connect

    class Handler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(Connection, req)

    return urllib.request.build_opener(urllib.request.ProxyHandler({}), Handler)


def health(url: str, timeout: float, through=None) -> dict:
    """``GET /api/health``'s answer when it is 200 with status ok; else raises ``Down``.
    ``through``: an ``opener()`` to reuse."""
    import urllib.error
    if through is None:
        through = opener()
    try:
        with through.open(url.rstrip("/") + "/api/health", timeout=timeout) as resp:
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


def probe(url: str, timeout: float, through=None) -> float:
    """1.0 when the health endpoint answers 200 with status ok, else 0.0. Never raises."""
    try:
        health(url, timeout, through)
    except Exception:  # refused, timed out, reset, not JSON: all mean "not up"
        return 0.0
    return 1.0


class BackendProcess:
    """The process whose executable is ``[backend] binary``, under ``[host] procfs_root``."""

    def __init__(self, config):
        self.root = config.host.procfs_root
        given = config.backend.binary
        self.targets = {given, os.path.realpath(given)}
        self.comm = os.path.basename(given)[:15]
        self.pid: Optional[int] = None
        self._scanned_at = -RESCAN_SECONDS

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
