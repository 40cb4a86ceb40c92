"""How long ago the daemon last wrote, told in a way a wall-clock step cannot fake.

A Jetson without an RTC battery boots at a stale time and NTP then steps the
clock; an operator may set it by hand. A sample's wall-clock stamp then says
nothing reliable about its age: after a step forward and back, samples stamped
during the step look newer than anything written since. So each tick's row
also carries ``CLOCK_BOOTTIME`` (monotonic, system-wide, counting suspend),
and the store records which kernel boot those stamps belong to. Within the
same boot the age is the difference of two monotonic readings; across a
reboot (or for a store from elsewhere) only the wall clock is left, and a
stamp ahead of it is not taken as recent.
"""
from __future__ import annotations

import os
import time
from typing import NamedTuple, Optional

# A stamp this far ahead of the reader's clock can only come from a clock step
# (the writer stamps a tick with the time it starts; both read the same clock).
FUTURE_SLACK = 2.0


def boot_id(procfs_root: str = "/proc") -> Optional[str]:
    """The kernel's id of this boot (a fixture tree without one has none)."""
    try:
        with open(os.path.join(procfs_root, "sys", "kernel", "random", "boot_id")) as f:
            return f.read().strip() or None
    except OSError:
        return None


def boottime_ms() -> int:
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * 1000)


class Age(NamedTuple):
    seconds: Optional[float]   # None: cannot be told (stamped ahead of this clock)
    ahead: float               # how far the stamp is ahead of this clock's now, else 0
    by: str                    # "monotonic" or "wall"


def age_of(ts: float, mono: Optional[int], writer_boot: Optional[str], now: float,
           procfs_root: str = "/proc") -> Age:
    """The age of a write stamped ``ts`` (wall) and ``mono`` (boottime ms) in boot ``writer_boot``."""
    if mono is not None and writer_boot is not None and writer_boot == boot_id(procfs_root):
        seconds = (boottime_ms() - mono) / 1000
        if seconds >= -FUTURE_SLACK:  # else the stamp is not of this boot after all: use the wall clock
            return Age(max(0.0, seconds), max(0.0, ts - now), "monotonic")
    seconds = now - ts
    if seconds < -FUTURE_SLACK:
        return Age(None, -seconds, "wall")
    return Age(max(0.0, seconds), 0.0, "wall")
