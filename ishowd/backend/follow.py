"""Which file a log position follows, and where that file went after a rotation.

A position (``Position``, a row of ``log_positions``) knows its file by
device, inode *and* a fingerprint of its first bytes: an inode number comes
back after a delete, and a truncated file keeps its inode, so neither alone
says "the same file". The fingerprint covers the first ``FP_BYTES`` bytes,
fewer while the file is shorter; the reader lengthens it as the file grows.

When the path no longer holds the file, or holds it truncated, the file or a
copy of it is looked for next to the log, among the ``[rtf] rotated`` globs:
``locate`` finds it renamed (same inode) or copied, ``find_copy`` the copy a
copy-then-truncate rotation left, ``find_retired`` where a renamed file being
followed is now. These functions only look and say what they found; what is
then read, counted and committed is the ingestor's (``ingest.py``, whose
docstring lists the file events and what is done for each).
"""
from __future__ import annotations

import glob
import hashlib
import os
import stat
import time
from dataclasses import dataclass, fields
from typing import Iterator, Optional, Sequence

FP_BYTES = 4096              # the fingerprint covers this many first bytes (fewer while the file is shorter)
MAX_CANDIDATES = 2000        # rotated-copy candidates looked at per search (a directory of old logs is bounded work)


@dataclass
class Position:
    log: str
    role: str                # "current": the file at the path; "retired": a renamed one still followed
    path: str
    dev: int
    inode: int
    fingerprint: str
    fp_len: int
    offset: int = 0
    skip_line: int = 0
    first_pending: int = 0
    size: int = 0
    changed: float = 0.0

    def row(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def fingerprint(f, length: int = FP_BYTES) -> tuple[str, int]:
    f.seek(0)
    data = f.read(length)
    return hashlib.sha1(data).hexdigest(), len(data)


def prefix(f, n: int) -> bytes:
    f.seek(0)
    return f.read(n)


def same_start(f, pos: Position) -> bool:
    """``f`` begins with the bytes ``pos`` fingerprinted."""
    return fingerprint(f, pos.fp_len) == (pos.fingerprint, pos.fp_len)


def same_inode(st: os.stat_result, pos: Position) -> bool:
    return (st.st_dev, st.st_ino) == (pos.dev, pos.inode)


def truncated(f, st: os.stat_result, pos: Position) -> bool:
    """``f`` (the inode ``pos`` follows, ``st`` its fstat) was truncated: it is shorter than the
    position, or its first bytes changed (truncated and grown past the position while nobody looked)."""
    return st.st_size < pos.offset or not same_start(f, pos)


def fresh(path: str, f, st: os.stat_result) -> Position:
    """A position at the start of ``f``, the file now at ``path`` (``st`` its fstat)."""
    fp, n = fingerprint(f)
    return Position(path, "current", path, st.st_dev, st.st_ino, fp, n, size=st.st_size, changed=time.time())


def candidates(log_path: str, rotated: Sequence[str], exclude: str) -> Iterator[tuple[str, os.stat_result]]:
    """Regular files matching the ``rotated`` globs in the log's directory (``exclude`` left out),
    with their stat; at most ``MAX_CANDIDATES``."""
    base = os.path.dirname(os.path.abspath(log_path))
    seen, n = set(), 0
    for pattern in rotated:
        for p in glob.iglob(os.path.join(glob.escape(base), pattern)):
            if p in seen or os.path.abspath(p) == os.path.abspath(exclude):
                continue
            seen.add(p)
            try:
                st = os.stat(p)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            yield p, st
            n += 1
            if n >= MAX_CANDIDATES:
                return


def locate(pos: Position, rotated: Sequence[str], exclude: str) -> Optional[str]:
    """Where the file ``pos`` follows is now: same device and inode and first bytes, else a copy
    (the same first bytes, at least as long as the position; the newest such)."""
    copies = []
    for p, st in candidates(pos.log, rotated, exclude):
        inode = same_inode(st, pos)
        if not inode and st.st_size < pos.offset:
            continue
        try:
            with open(p, "rb") as f:
                if not same_start(f, pos):
                    continue
        except OSError:
            continue
        if inode:
            return p
        copies.append((st.st_mtime, p))
    return max(copies)[1] if copies else None


def find_copy(pos: Position, rotated: Sequence[str]) -> Optional[str]:
    """The file ``pos`` follows was truncated: the newest rotated copy of it (another inode with the
    same first bytes, at least as long as the position), which holds what was written past ``pos``."""
    best = None
    for p, st in candidates(pos.log, rotated, exclude=pos.path):
        if same_inode(st, pos) or st.st_size < pos.offset:
            continue
        try:
            with open(p, "rb") as f:
                if same_start(f, pos) and (best is None or st.st_mtime > best[0]):
                    best = (st.st_mtime, p)
        except OSError:
            continue
    return None if best is None else best[1]


def find_retired(ret: Position, rotated: Sequence[str]) -> Optional[str]:
    """Where the renamed file ``ret`` follows is now: still at ``ret.path``, or renamed again."""
    try:
        if same_inode(os.stat(ret.path), ret):
            return ret.path
    except OSError:
        pass
    return locate(ret, rotated, exclude=ret.log)
