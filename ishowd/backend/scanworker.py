"""What a catch-up worker process runs: read one batch of a log and scan it (no store).

Kept apart from ``ingest`` so that a worker, started fresh (``spawn``), imports
only this and ``logformat``: the pool is up in well under 0.1 s.
"""
from __future__ import annotations

import os

from . import logformat as lf

_compiled: dict = {}
_buf = bytearray()


def init(parent: int) -> None:
    """A catch-up worker dies with the daemon (``kill -9`` included), never lingers."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the worker still exits when its pipe to the daemon closes
        pass
    if os.getppid() != parent:
        os._exit(0)


def scan_chunk(path: str, offset: int, length: int, skip_line: bool, ignore: tuple) -> lf.ScanResult:
    """Scan ``length`` bytes of ``path`` from ``offset`` (which is a line start)."""
    global _buf
    pats = _compiled.get(ignore)
    if pats is None:
        pats = _compiled[ignore] = lf.compile_ignore(ignore)
    if len(_buf) < length + 1:
        _buf = bytearray(length + 1)    # one buffer per worker, reused: no fresh pages per batch
        _buf[0] = 0x0A                  # the scanner wants the byte before the data to be a newline
    with open(path, "rb") as f:
        f.seek(offset)
        n = f.readinto(memoryview(_buf)[1:1 + length]) or 0
    return lf.scan_buffer(_buf, 1, 1 + n, final=False, skip_line=skip_line, ignore=pats)
