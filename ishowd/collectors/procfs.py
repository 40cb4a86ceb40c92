"""What the kernel counts in procfs: load average, uptime, boot time, network and disk I/O.

Read under ``[host] procfs_root``, each file once per tick:

* ``loadavg``: ``load_average{window}`` for 1m, 5m, 15m;
* ``uptime``: ``uptime_seconds``. Under the kernel's own ``/proc`` the same figure is read from
  the clock it comes from (``CLOCK_BOOTTIME``), which spares the kernel writing out the table and
  its every CPU's idle time each tick;
* ``stat``: ``btime``, ``boot_timestamp_seconds``. It is read at start and again only when the wall
  clock has stepped since (``now - uptime`` moved by more than 2 s: a Jetson without an RTC battery
  boots at a wrong time and NTP steps it, which moves btime too); the rest of the tick need not pay
  for the kernel writing out every CPU's and interrupt's counters;
* ``net/dev``: per interface, bytes, errors and drops each way, less ``[host] network_exclude``;
* ``diskstats``: per whole block device, sectors read and written × 512 and io_ticks (ms busy),
  less ``[host] disk_exclude``. A device is whole when ``[host] sysfs_root``'s ``block/<name>``
  exists (the kernel lists only whole devices there): a partition's I/O is already in its disk's.
  A name is looked up once, when it first appears.

A file the host lacks, a line that does not parse, a field that is not a number: those readings are
absent, the others still read.
"""
from __future__ import annotations

import fnmatch
import os
import re
import time
from pathlib import Path
from typing import Iterable

from ..metrics import Sample
from ..paths import proc_path, sys_path
from ..specs.procfs import (BOOT, DISK_BUSY, DISK_READ, DISK_WRITTEN, LOAD, NET_RX, NET_RX_DROPS, NET_RX_ERRORS,
                            NET_TX, NET_TX_DROPS, NET_TX_ERRORS, UPTIME)
from . import Collector, TickContext, register
from ._sysfs import KeptFile, exists, read_all

SECTOR = 512                # /proc/diskstats counts 512-byte sectors whatever the device's own size
CLOCK_STEP = 2.0            # btime is whole seconds, uptime read a moment after the tick's time
_WINDOWS = ({"window": "1m"}, {"window": "5m"}, {"window": "15m"})


def globs(patterns) -> re.Pattern | None:
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None


def btime(stat: bytes) -> float | None:
    for line in stat.splitlines():
        if line.startswith(b"btime "):
            try:
                return float(int(line.split()[1]))
            except (IndexError, ValueError):
                return None
    return None


@register
class ProcfsCollector(Collector):
    name = "procfs"
    metrics = (LOAD, UPTIME, BOOT, NET_RX, NET_TX, NET_RX_ERRORS, NET_TX_ERRORS, NET_RX_DROPS, NET_TX_DROPS,
               DISK_READ, DISK_WRITTEN, DISK_BUSY)

    def setup(self):
        root = proc_path(self.config)
        found = {}
        for name in ("loadavg", "uptime", "stat", "net/dev", "diskstats"):
            path = str(root / name)
            found[name] = path if exists(path) else None
        if not any(found.values()):
            return f"no loadavg, uptime, stat, net/dev or diskstats in {root}"
        # the tables read every tick through descriptors kept open; stat is read seldom
        self._uptime_clock = bool(found["uptime"]) and root == Path("/proc")
        if self._uptime_clock:
            found["uptime"] = None
        self._loadavg, self._uptime, self._netdev, self._diskstats = (
            KeptFile(found[n]) if found[n] else None for n in ("loadavg", "uptime", "net/dev", "diskstats"))
        self._stat = found["stat"]
        self._block = str(sys_path(self.config, "block"))
        self._net_excluded = globs(self.config.host.network_exclude)
        self._disk_excluded = globs(self.config.host.disk_exclude)
        # name -> its labels, or None when left out: each name is judged once
        self._interfaces: dict[str, dict | None] = {}
        self._devices: dict[str, dict | None] = {}
        self._boot: float | None = None
        self._boot_read = False
        self._booted_at: float | None = None    # now - uptime when btime was last read
        return None

    def close(self) -> None:
        for kept in (self._loadavg, self._uptime, self._netdev, self._diskstats):
            if kept is not None:
                kept.close()

    def collect(self, ctx: TickContext) -> Iterable[Sample]:
        out: list[Sample] = []
        if self._loadavg:
            self._read_loadavg(out)
        up = self._read_uptime(out) if self._uptime or self._uptime_clock else None
        if self._stat:
            self._read_boot(out, ctx.now, up)
        if self._netdev:
            self._read_netdev(out)
        if self._diskstats:
            self._read_diskstats(out)
        return out

    def _read_loadavg(self, out: list) -> None:
        try:
            values = [float(v) for v in self._loadavg.read().split()[:3]]
        except (OSError, ValueError):
            return
        if len(values) == 3:
            out += [Sample(LOAD, v, w) for v, w in zip(values, _WINDOWS)]

    def _read_uptime(self, out: list) -> float | None:
        try:
            up = time.clock_gettime(time.CLOCK_BOOTTIME) if self._uptime_clock \
                else float(self._uptime.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        out.append(Sample(UPTIME, up))
        return up

    def _read_boot(self, out: list, now: float, up: float | None) -> None:
        booted_at = None if up is None else now - up
        stepped = booted_at is not None and self._booted_at is not None \
            and abs(booted_at - self._booted_at) > CLOCK_STEP
        if not self._boot_read or stepped:
            try:
                self._boot = btime(read_all(self._stat))
            except OSError:
                self._boot = None
            self._boot_read, self._booted_at = True, booted_at
        if self._boot is not None:
            out.append(Sample(BOOT, self._boot))

    def _read_netdev(self, out: list) -> None:
        try:
            lines = self._netdev.read().decode("ascii", "replace").splitlines()[2:]
        except OSError:
            return
        for line in lines:
            name, colon, rest = line.partition(":")
            if not colon:
                continue
            name = name.strip()
            labels = self._interfaces.get(name, False)
            if labels is False:
                keep = not (self._net_excluded and self._net_excluded.match(name))
                labels = self._interfaces[name] = {"interface": name} if keep else None
            if labels is None:
                continue
            f = rest.split()
            try:
                rx, rx_errs, rx_drop, tx, tx_errs, tx_drop = (int(f[i]) for i in (0, 2, 3, 8, 10, 11))
            except (IndexError, ValueError):
                continue
            out += [Sample(NET_RX, float(rx), labels), Sample(NET_RX_ERRORS, float(rx_errs), labels),
                    Sample(NET_RX_DROPS, float(rx_drop), labels), Sample(NET_TX, float(tx), labels),
                    Sample(NET_TX_ERRORS, float(tx_errs), labels), Sample(NET_TX_DROPS, float(tx_drop), labels)]

    def _read_diskstats(self, out: list) -> None:
        try:
            lines = self._diskstats.read().decode("ascii", "replace").splitlines()
        except OSError:
            return
        for line in lines:
            f = line.split()
            if len(f) < 14:
                continue
            name = f[2]
            labels = self._devices.get(name, False)
            if labels is False:
                keep = exists(os.path.join(self._block, name)) and \
                    not (self._disk_excluded and self._disk_excluded.match(name))
                labels = self._devices[name] = {"device": name} if keep else None
            if labels is None:
                continue
            try:
                read, written, busy_ms = int(f[5]), int(f[9]), int(f[12])
            except ValueError:
                continue
            out += [Sample(DISK_READ, float(read * SECTOR), labels),
                    Sample(DISK_WRITTEN, float(written * SECTOR), labels), Sample(DISK_BUSY, busy_ms / 1000.0, labels)]
