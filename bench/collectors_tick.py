#!/usr/bin/env python3
"""CPU cost of one tick of the Jetson hardware collectors on a fixture tree.

    python bench/collectors_tick.py [--board orin-jp6-locked] [--ticks 20000]

Sets up jetson_gpu, thermal, power, fan, gpu_memory, nvpmodel, cpufreq, engines and procfs with
``[host] sysfs_root``/``procfs_root`` at ``tests/fixtures/sysfs/<board>``
(discovery and the one ``nvpmodel -q`` happen in setup, as in the daemon),
then calls every ``collect()`` N times and prints the CPU time
(``time.process_time``, user + system of this process) per tick. The reads
hit the page cache, as sysfs reads do on the board (sysfs attributes are
generated in memory; a real read can cost more in the driver, e.g. the
INA3221's I²C conversion, which this cannot measure).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ishowd import catalog  # noqa: E402
from ishowd.collectors import TickContext  # noqa: E402

JETSON = ("jetson_gpu", "thermal", "power", "fan", "gpu_memory", "nvpmodel", "cpufreq", "engines", "procfs")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="orin-jp6-locked")
    ap.add_argument("--ticks", type=int, default=20000)
    args = ap.parse_args()
    tree = ROOT / "tests" / "fixtures" / "sysfs" / args.board
    cfg = catalog.loads_config(f'[host]\nsysfs_root = "{tree / "sys"}"\nprocfs_root = "{tree / "proc"}"\n'
                               f'[gpu]\nnvpmodel_path = "{tree / "bin" / "nvpmodel"}"\nnvml = "off"\n', "<bench>")
    collectors = []
    for name in JETSON:
        c = catalog.collectors()[name](cfg)
        reason = c.setup()
        if reason:
            print(f"{name}: skipped ({reason})")
        else:
            collectors.append(c)
    ctx = TickContext(now=time.time(), config=cfg)
    samples = sum(len(list(c.collect(ctx))) for c in collectors)   # warm-up tick
    per = {c.name: 0.0 for c in collectors}
    start = time.process_time()
    for _ in range(args.ticks):
        for c in collectors:
            t0 = time.process_time()
            list(c.collect(ctx))
            per[c.name] += time.process_time() - t0
    total = time.process_time() - start
    print(f"command: python bench/collectors_tick.py --board {args.board} --ticks {args.ticks}")
    print(f"python {platform.python_version()} on {platform.machine()}, {samples} samples per tick "
          f"from {len(collectors)} collectors")
    for name, spent in per.items():
        print(f"  {name:<11} {spent / args.ticks * 1e6:7.1f} µs CPU per tick")
    print(f"all collectors: {total / args.ticks * 1e6:.1f} µs CPU per tick (limit 1000 µs)")
    return 0 if total / args.ticks < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
