"""What a procfs table's read costs opened each time against read through a kept descriptor.

    python bench/procfs_read.py [--reads 5000]

For each table the host collectors read every tick, the time of one read both
ways (open, read, close; ``KeptFile.read``: one ``fstat`` and one ``pread``),
interleaved in rounds so that both see the same machine, and their ratio.
"""
from __future__ import annotations

import argparse
import os
import time

from ishowd.collectors._sysfs import KeptFile, read_all

TABLES = ("stat", "meminfo", "loadavg", "uptime", "net/dev", "diskstats")


def per_read(fn, reads: int) -> float:
    t0 = time.perf_counter()
    for _ in range(reads):
        fn()
    return (time.perf_counter() - t0) / reads * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reads", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    print(f"{'table':<12} {'opened us':>10} {'kept us':>8} {'kept/opened':>12}")
    total_open = total_kept = 0.0
    for name in TABLES:
        path = os.path.join("/proc", name)
        kept = KeptFile(path)
        opened, held = [], []
        for _ in range(args.rounds):
            opened.append(per_read(lambda: read_all(path), args.reads))
            held.append(per_read(kept.read, args.reads))
        kept.close()
        a, b = min(opened), min(held)
        total_open, total_kept = total_open + a, total_kept + b
        print(f"{name:<12} {a:10.1f} {b:8.1f} {b / a:12.2f}")
    print(f"{'all six':<12} {total_open:10.1f} {total_kept:8.1f} {total_kept / total_open:12.2f}")


if __name__ == "__main__":
    main()
