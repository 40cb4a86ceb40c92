"""What the kernel counts in procfs: load average, uptime and boot time, network and disk I/O.

Read by ``ishowd/collectors/procfs.py``; the names follow node_exporter's (``node_load1``,
``node_boot_time_seconds``, ``node_network_receive_bytes_total``, ``node_disk_read_bytes_total``,
``node_disk_io_time_seconds_total``) in this project's form.
"""
from __future__ import annotations

from ..config import Key
from ..metrics import declare

LOAD = declare("load_average", "ratio", "Runnable and uninterruptible tasks averaged over the window (/proc/loadavg; "
               "window: 1m, 5m, 15m).", ("window",))
UPTIME = declare("uptime_seconds", "seconds", "Time since boot (/proc/uptime).")
BOOT = declare("boot_timestamp_seconds", "seconds", "When the host booted, UTC seconds (btime of /proc/stat; "
               "node_exporter's node_boot_time_seconds).")
NET_RX = declare("network_receive_bytes_total", "bytes", "Bytes received on the interface (/proc/net/dev).",
                 ("interface",), kind="counter")
NET_TX = declare("network_transmit_bytes_total", "bytes", "Bytes sent on the interface (/proc/net/dev).",
                 ("interface",), kind="counter")
NET_RX_ERRORS = declare("network_receive_errors_total", "count", "Receive errors on the interface (/proc/net/dev).",
                        ("interface",), kind="counter")
NET_TX_ERRORS = declare("network_transmit_errors_total", "count", "Transmit errors on the interface (/proc/net/dev).",
                        ("interface",), kind="counter")
NET_RX_DROPS = declare("network_receive_drops_total", "count", "Received packets dropped (/proc/net/dev).",
                       ("interface",), kind="counter")
NET_TX_DROPS = declare("network_transmit_drops_total", "count", "Packets dropped before sending (/proc/net/dev).",
                       ("interface",), kind="counter")
DISK_READ = declare("disk_read_bytes_total", "bytes", "Bytes read from the whole block device (/proc/diskstats: "
                    "sectors read × 512).", ("device",), kind="counter")
DISK_WRITTEN = declare("disk_written_bytes_total", "bytes", "Bytes written to the whole block device "
                       "(/proc/diskstats: sectors written × 512).", ("device",), kind="counter")
DISK_BUSY = declare("disk_busy_seconds_total", "seconds", "Time the device had I/O in flight (/proc/diskstats "
                    "io_ticks; its rate is the device's utilisation).", ("device",), kind="counter")

KEYS = {"host": {
    "network_exclude": Key("strlist", ["lo", "veth*"],
                           "interfaces left out of the network_* metrics, as globs (veth*: one per container, "
                           "each a new series)"),
    "disk_exclude": Key("strlist", ["loop*", "ram*", "zram*"],
                        "whole block devices left out of the disk_*_total metrics, as globs (partitions are "
                        "always left out: their I/O is in their disk's)"),
}}

METRICS = (LOAD, UPTIME, BOOT, NET_RX, NET_TX, NET_RX_ERRORS, NET_TX_ERRORS, NET_RX_DROPS, NET_TX_DROPS,
           DISK_READ, DISK_WRITTEN, DISK_BUSY)
