"""Small, fast readers for sysfs/procfs attribute files, shared by the hardware collectors.

Every path handed to these functions has been built from ``[host] sysfs_root``
or ``procfs_root`` (``ishowd.paths``). A sysfs attribute is one short value and
a newline; reading it with ``os.open``/``os.read`` costs a few microseconds, which
is what keeps a tick of all Jetson collectors well under a millisecond.

Errors are classified, not swallowed: a caller drops the one sample whose read
failed, and asks for re-discovery only when the file has *gone*
(:func:`is_gone`), not when it is merely unreadable right now (EAGAIN while the
DLA is powered off, EIO, a value that is not a number).
"""
from __future__ import annotations

import errno
import os
from typing import Iterable

from ..metrics import Sample
from . import Collector, TickContext

# errno values that mean "this path no longer exists": re-discover.
_GONE = {errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.ENOTDIR}


def read_bytes(path: str) -> bytes:
    """The whole (short) file. Raises OSError."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def read_str(path: str) -> str:
    """The file's text, stripped of whitespace and the NUL that device-tree strings end with."""
    return read_bytes(path).decode("utf-8", "replace").strip().strip("\x00").strip()


def read_int(path: str) -> int:
    """One integer. Raises OSError (unreadable) or ValueError (empty, not a number)."""
    return int(read_bytes(path))


def try_str(path: str) -> str | None:
    """For discovery only: the text, or None when it cannot be read."""
    try:
        return read_str(path)
    except OSError:
        return None


def is_gone(exc: OSError) -> bool:
    """True when the error says the file or its device has disappeared."""
    return exc.errno in _GONE


def listdir(path: str) -> list[str]:
    """Sorted entries of a directory; [] when it does not exist (discovery only)."""
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


class KeptFile:
    """A procfs table read every tick through a descriptor kept open, from offset 0 each time.

    The kernel writes a procfs file's text anew for every read from offset 0, so the
    descriptor does not go stale; what a tick saves is the path lookup, the open and
    the close: a quarter of the six tables' cost (``bench/procfs_read.py``). Only for
    procfs tables, which exist as long as the kernel runs: a sysfs attribute can go
    with its device, and its reader must see it go. A file unlinked or renamed over
    (a fixture tree's, a copy's) has no links left: it is opened again by its path,
    as is one whose read fails, so the error raised is the file's own. A table the kernel writes
    (size 0, yet it reads) cannot be unlinked or renamed over: it is read without that check.
    Raises OSError.
    """
    __slots__ = ("path", "_fd", "_procfs")

    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None
        self._procfs = False

    def read(self) -> bytes:
        if self._fd is not None:
            try:
                if self._procfs or os.fstat(self._fd).st_nlink:
                    return _pread_all(self._fd)
            except OSError:
                pass
            self.close()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = _pread_all(fd)
            # the kernel's tables say size 0 and still read: no fixture file or copy does
            self._procfs = bool(data) and os.fstat(fd).st_size == 0
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return data

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


_CHUNK = 65536


def read_all(path: str) -> bytes:
    """The whole file, for a procfs table read once. Raises OSError."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _pread_all(fd)
    finally:
        os.close(fd)


def _pread_all(fd: int) -> bytes:
    """All of the file from offset 0: a procfs table may outgrow one read."""
    data = os.pread(fd, _CHUNK, 0)
    if len(data) < _CHUNK:
        return data
    chunks = [data]
    while len(chunks[-1]) == _CHUNK:
        chunks.append(os.pread(fd, _CHUNK, _CHUNK * len(chunks)))
    return b"".join(chunks)


def exists(path: str) -> bool:
    """True for a file or directory, False for nothing or a dangling symlink."""
    return os.path.exists(path)




class SysfsCollector(Collector):
    """A collector over sysfs files found once, and found again only when one has gone.

    A subclass provides ``discover()`` (what to read: a list, empty when the
    source is absent) and ``read(found, ctx)`` (the tick), reading each value
    with ``value()``: a file that is unreadable right now or holds no number
    costs only its own sample; a file that has gone marks the paths stale and
    the next tick discovers again.
    """
    #: the setup() skip reason when discovery finds nothing
    absent = "nothing to read"

    def setup(self):
        self.discoveries = 0
        self.found = self._rediscover()
        return None if self.found else self.absent

    def _rediscover(self) -> list:
        self.discoveries += 1
        self._stale = False
        return self.discover()

    def discover(self) -> list:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, found: list, ctx: TickContext) -> Iterable[Sample]:  # pragma: no cover - abstract
        raise NotImplementedError

    def value(self, path: str) -> int | None:
        try:
            return read_int(path)
        except OSError as exc:
            if is_gone(exc):
                self._stale = True
            return None
        except ValueError:
            return None

    def collect(self, ctx: TickContext) -> Iterable[Sample]:
        if self._stale:
            self.found = self._rediscover()
        return self.read(self.found, ctx)
