"""Small real file systems for the tests: a tmpfs to fill up, make read-only or that cannot cut a file.

They need root (CI runs the suite as root); elsewhere the test is skipped with the reason.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def mount_tmpfs(where: Path, options: str) -> None:
    """A tmpfs at ``where`` with mount ``options`` such as "size=8m" or "size=1m,ro"."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the suite as root)")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not allowed here: {proc.stderr.strip()}")


def unmount(where: Path) -> None:
    if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(where)], check=True)   # a process of a failed test still in it


def fill(where: Path) -> Path:
    """A filler file taking every free block of the file system ``where`` is on."""
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for block in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError as exc:
                assert exc.errno == 28, exc   # ENOSPC
    finally:
        os.close(fd)
    assert os.statvfs(where).f_bavail == 0
    return filler
