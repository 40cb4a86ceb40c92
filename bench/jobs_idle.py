"""What the registered maintenance jobs cost the daemon between their runs: CPU per tick, with and without.

    python bench/jobs_idle.py [--ticks 3000] [--rounds 5]

One in-process ``Daemon`` on a temporary store and deployment tree (every job
enabled), ticked with a simulated clock 10 s apart, in alternating blocks:
with its jobs, and with the job runner emptied (the yardstick, in the same
run). The job metrics go into a tick once a minute, so this is what that
costs; a scheduled job costs nothing else until its time comes.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    from ishowd import catalog
    from ishowd.daemon import Daemon

    tmp = Path(tempfile.mkdtemp())
    root = tmp / "ishowtts"
    (root / "logs").mkdir(parents=True)
    cfg = catalog.loads_config(f'[storage]\npath = "{tmp / "s.db"}"\n[exporter]\nlisten = ""\n'
                               f'[deployment]\nroot = "{root}"\npython = "/bin/true"\n'
                               f'[rtf]\nlogs = []\n[alerts]\nrules = []\n', "bench")
    daemon = Daemon(cfg)
    jobs = dict(daemon.jobs.jobs)
    print(f"jobs registered: {', '.join(sorted(jobs))} (enabled here: {', '.join(daemon.jobs.enabled())})")
    now = time.time()
    per_tick = {"with jobs": [], "no jobs": []}
    for _ in range(args.rounds):
        for label in ("with jobs", "no jobs"):
            daemon.jobs.jobs = jobs if label == "with jobs" else {}
            start = time.process_time()
            for _ in range(args.ticks):
                now += 10
                daemon.tick(now, after=False)
            per_tick[label].append((time.process_time() - start) / args.ticks * 1e3)
    daemon.jobs.jobs = jobs
    daemon.close()
    a, b = statistics.median(per_tick["with jobs"]), statistics.median(per_tick["no jobs"])
    print(f"CPU per tick, median of {args.rounds} blocks of {args.ticks}: with jobs {a:.3f} ms, "
          f"without {b:.3f} ms: {a / b:.3f}x")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
