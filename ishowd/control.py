"""The daemon's control socket: how ``ishowctl jobs run`` asks the running daemon to run a job.

The store has one writer, and a log rotation must move the daemon's own
tailer position with the cut, so a job asked for while the daemon runs is
run by the daemon. The socket is ``ishowd.sock`` beside the store (the state
directory), a Unix stream socket made with mode 0600; every connection's
peer credentials (``SO_PEERCRED``) are checked as well, so only the daemon's
own user and root are served, whatever the file's mode or directory became.

The protocol is one JSON object per line. The client sends
``{"op": "run", "job": NAME}``; the daemon answers with any number of
``{"progress": TEXT}`` lines, then ``{"run": {...}}`` (the recorded run, as
``jobs run --json`` prints it) or ``{"error": TEXT}``. ``{"op": "ping"}`` is
answered ``{"pid": N}``.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import struct
import threading
from typing import Callable, Iterator, Optional

log = logging.getLogger("ishowd.control")

SOCKET_NAME = "ishowd.sock"
MAX_REQUEST = 4096   # bytes: a request is one short line


def socket_path(store_path: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(store_path)), SOCKET_NAME)


def peer_uid(conn: socket.socket) -> int:
    pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return uid


class ControlServer:
    """Serves the socket in its own threads; ``run_job(name, progress)`` returns the run as JSON."""

    def __init__(self, path: str, run_job: Callable[[str, Callable[[str], None]], dict], jobs: Callable[[], list]):
        self.path = path
        self.run_job = run_job
        self.jobs = jobs
        self.sock: Optional[socket.socket] = None

    def start(self) -> bool:
        try:
            if os.path.exists(self.path) and not os.path.isdir(self.path):
                os.unlink(self.path)  # left by a daemon that was killed: we hold the writer lock, so it was ours
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old = os.umask(0o177)
            try:
                sock.bind(self.path)
            finally:
                os.umask(old)
            os.chmod(self.path, 0o600)
            sock.listen(8)
        except OSError as exc:
            log.error("control socket %s: %s; `ishowctl jobs run` will not reach this daemon", self.path, exc)
            return False
        self.sock = sock
        threading.Thread(target=self._accept, name="ishowd-control", daemon=True).start()
        return True

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), name="ishowd-control-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            def send(obj: dict) -> None:
                try:
                    conn.sendall(json.dumps(obj).encode() + b"\n")
                except OSError:
                    pass  # the client went away; the run goes on and is recorded
            try:
                uid = peer_uid(conn)
            except OSError:
                return
            conn.settimeout(10)
            if uid not in (0, os.getuid()):
                log.warning("control socket: refused a client running as uid %d", uid)
                # its request is read (and ignored) first: closing on a client still writing
                # would break its pipe before it reads why
                try:
                    conn.makefile("rb").readline(MAX_REQUEST)
                except OSError:
                    pass
                send({"error": f"refused: only root and the daemon's user (uid {os.getuid()}) may use this socket"})
                return
            try:
                line = conn.makefile("rb").readline(MAX_REQUEST)
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("not an object")
            except (OSError, ValueError):
                send({"error": "bad request: expected one JSON object on one line"})
                return
            conn.settimeout(None)
            op = request.get("op")
            if op == "ping":
                send({"pid": os.getpid()})
            elif op == "run":
                name = request.get("job")
                if name not in self.jobs():
                    send({"error": f"no job {str(name)[:80]!r} (jobs: {', '.join(self.jobs())})"})
                    return
                try:
                    send({"run": self.run_job(name, lambda text: send({"progress": text}))})
                except Exception as exc:  # the daemon must outlive a failing request
                    log.exception("control socket: running %s failed", name)
                    send({"error": f"running {name} failed: {exc}"})
            else:
                send({"error": f"unknown op {str(op)[:40]!r}"})

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            try:
                os.unlink(self.path)
            except OSError:
                pass


class NoDaemon(Exception):
    """No daemon answers on the socket (none runs, or a stale socket file)."""


def request(path: str, obj: dict) -> Iterator[dict]:
    """Send one request to the daemon and yield its answers as they come."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        sock.close()
        raise NoDaemon(str(exc)) from None
    with sock:
        sock.sendall(json.dumps(obj).encode() + b"\n")
        for line in sock.makefile("rb"):
            try:
                yield json.loads(line)
            except ValueError:
                continue
