"""systemd's notification protocol, spoken directly: one datagram per message to ``$NOTIFY_SOCKET``.

What ``sd_notify(3)`` does, without linking libsystemd: the message is lines of
``KEY=VALUE`` (``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``,
``RELOADING=1``) in one ``AF_UNIX`` ``SOCK_DGRAM`` datagram; the kernel attaches
the sender's credentials, by which systemd tells the main process
(``NotifyAccess=main``). An address starting with ``@`` is in the abstract
namespace (a NUL byte in its place). ``WATCHDOG_USEC`` is the watchdog's timeout;
with ``WATCHDOG_PID`` set to another process, the pings are not ours to send.

The variables are taken out of the environment once read (as sd_notify's
``unset_environment`` does), so hooks, jobs and the service's interpreter,
started by the daemon, never speak for it.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import MutableMapping, Optional

log = logging.getLogger("ishowd.notify")

# systemd reads the socket at once; a manager that does not must not hold a tick or the reload up long
SEND_TIMEOUT = 1.0


def _address(value: str) -> Optional[str]:
    """The socket address of ``$NOTIFY_SOCKET`` as ``socket.sendto`` takes it, or None when it is not
    a Unix socket (``vsock:`` is for virtual machines, which ishowd does not run in)."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def _decimal(text: str) -> bool:
    return text.isascii() and text.isdigit()   # isdigit alone takes any script's digits


def one_line(text: str) -> str:
    """A value for one ``KEY=VALUE`` line: a newline would start another key."""
    return " ".join(text.split())


class Notifier:
    """Sends to the service manager; does nothing when ishowd was not started by one."""

    def __init__(self, address: Optional[str]):
        self.address = address
        self._sock: Optional[socket.socket] = None
        self._failed: set[str] = set()    # what went wrong already, said once each

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] = os.environ) -> "Notifier":
        value = environ.pop("NOTIFY_SOCKET", "")
        address = _address(value) if value else None
        if value and address is None:
            log.warning("NOTIFY_SOCKET=%s is not a Unix socket address; systemd will not hear from ishowd", value)
        return cls(address)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """One message of ``KEY=VALUE`` lines; True when it was handed to the manager."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.settimeout(SEND_TIMEOUT)
            self._sock.sendto("\n".join(lines).encode("utf-8", "replace"), self.address)
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            if why not in self._failed:
                self._failed.add(why)
                log.warning("telling systemd %s failed: %s (further failures of this kind are not logged)",
                            lines[0].partition("=")[0], why)
            return False
        return True

    def ready(self, status: Optional[str] = None) -> bool:
        return self.send("READY=1", *(() if status is None else ("STATUS=" + one_line(status),)))

    def status(self, text: str) -> bool:
        return self.send("STATUS=" + one_line(text))

    def reloading(self) -> bool:
        # MONOTONIC_USEC: when the reload began, so systemd (253 and later) knows this READY=1 ends it
        return self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_timeout(environ: MutableMapping[str, str] = os.environ, pid: Optional[int] = None) -> Optional[float]:
    """The watchdog's timeout in seconds when systemd expects this process's pings, else None
    (as ``sd_watchdog_enabled``: no or a bad ``WATCHDOG_USEC``, or a ``WATCHDOG_PID`` of another process)."""
    usec = environ.pop("WATCHDOG_USEC", "")
    owner = environ.pop("WATCHDOG_PID", "")
    if not _decimal(usec) or int(usec) == 0:
        return None
    if owner and (not _decimal(owner) or int(owner) != (os.getpid() if pid is None else pid)):
        return None
    return int(usec) / 1e6
