"""Steady-state cost of one sampling tick: CPU, bytes written to disk, and the idle daemon's memory.

    python bench/tick.py [--ticks 3000]

CPU: the host collector's collect() plus the write of a full reference tick
(40 series), per tick, from time.process_time. Bytes written: every byte the
process hands to write() (/proc/self/io wchar: WAL frames, checkpoints into
the main file, sealing and pruning), divided by the ticks, over several
simulated hours so hourly sealing and checkpoints are included. RSS: a real
`ishowd run` with the built-in defaults, after a minute of ticks.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from workload import HOUR, INTERVAL, Generator, series_specs  # noqa: E402


def wchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no /proc/self/io")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=3000)
    args = ap.parse_args()

    from ishowd import catalog
    from ishowd.catalog import metric as get
    from ishowd.collectors import TickContext
    from ishowd.collectors.host import HostCollector
    from ishowd.metrics import Sample
    from ishowd.store.writer import Store

    tmp = Path(tempfile.mkdtemp())
    cfg = catalog.loads_config(f'[storage]\npath = "{tmp / "t.db"}"\n', "bench")
    store = Store(tmp / "t.db")
    host = HostCollector(cfg)
    host.setup()
    specs = [s for s in series_specs() if not s[0].startswith(("cpu_", "memory_", "swap_"))]
    # The host collector supplies its own 6-7 series; the rest of the 40 come from the workload.
    ctx = TickContext(now=0, config=cfg)
    from ishowd.metrics import declare, labels_key
    real = {(s.metric.name, labels_key(s.labels)) for s in host.collect(ctx)}
    synth = [(get(name) or declare(name, "ratio", "bench"), labels, Generator(kind, i))
             for i, (name, labels, kind) in enumerate(specs) if (name, labels_key(labels)) not in real]
    synth = synth[: 40 - len(real)]
    t = 1_767_225_600
    # warm up: one hour, so the head is in its steady shape
    for _ in range(HOUR // INTERVAL):
        store.write(t, [Sample(m, g.hour(1)[0], lab) for m, lab, g in synth])
        store.maintain(t)
        t += INTERVAL
    cpu, n_samples = [], 0
    w0 = wchar()
    for _ in range(args.ticks):
        c0 = time.process_time()
        batch = list(host.collect(ctx)) + [Sample(m, g.hour(1)[0], lab) for m, lab, g in synth]
        store.write(t, batch)
        store.maintain(t)
        cpu.append(time.process_time() - c0)
        n_samples = len(batch)
        t += INTERVAL
    store.checkpoint()  # count the last checkpoint too
    written = wchar() - w0
    store.close()
    cpu.sort()
    print(f"$ python bench/tick.py --ticks {args.ticks}")
    print(f"reference tick: {n_samples} samples (host collector + {len(synth)} workload series), "
          f"{args.ticks} ticks = {args.ticks * INTERVAL / 3600:.1f} simulated hours incl. hourly sealing")
    print(f"CPU per tick (host collect + write + maintain): median {statistics.median(cpu) * 1e3:.3f} ms, "
          f"p95 {cpu[int(len(cpu) * 0.95)] * 1e3:.3f} ms, mean {statistics.fmean(cpu) * 1e3:.3f} ms")
    print(f"bytes written per tick (write() syscalls: WAL, checkpoints, sealing): {written / args.ticks:,.0f} B")

    # The idle daemon's resident memory, with the built-in defaults.
    env = dict(os.environ, XDG_STATE_HOME=str(tmp / "state"))
    env.pop("ISHOWD_CONFIG", None)
    conf = tmp / "rss.toml"
    conf.write_text(f'[storage]\npath = "{tmp / "rss.db"}"\n')
    proc = subprocess.Popen([str(Path(sys.executable).parent / "ishowd"), "run", "--config", str(conf)],
                            env=env, stderr=subprocess.DEVNULL)
    try:
        time.sleep(60)  # a bench, not a test: let it tick for a minute
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    finally:
        proc.terminate()
        proc.wait()
    print(f"idle daemon (`ishowd run`, built-in defaults + exporter, after 60 s): VmRSS {rss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
