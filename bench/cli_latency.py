"""Wall time of `ishowctl status` and `ishowctl history` end to end, as an operator runs them.

    python bench/cli_latency.py [--store bench/out/year.db] [--runs 21]

Uses a store that bench/store_year.py builds (a year by default; `--days 30`
and `--store bench/out/month.db` for a quicker one). Each figure is the median
of --runs runs of the installed command (a fresh process each time), and its
ratio to `python -c pass` measured in the same run: the yardstick moves with
the machine's load, the ratio much less. Run it with the interpreter of the
environment to measure (its `ishowctl` is the one timed).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def median_wall(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default="bench/out/year.db")
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    store = Path(args.store).resolve()
    if not store.exists():
        sys.exit(f"{store} is missing: run `python bench/store_year.py` first")
    cfg = Path(tempfile.mkdtemp()) / "bench.toml"
    cfg.write_text(f'[storage]\npath = "{store}"\n[exporter]\nlisten = ""\n')
    ctl = str(Path(sys.executable).parent / "ishowctl")
    import sqlite3
    last = sqlite3.connect(store).execute("SELECT max(start_ts) FROM chunks WHERE kind = 'raw'").fetchone()[0]
    from datetime import datetime, timezone
    until = datetime.fromtimestamp(last + 3600, timezone.utc).isoformat()
    since = datetime.fromtimestamp(last + 3600 - 365 * 86400, timezone.utc).isoformat()
    runs = [
        ("ishowctl status", [ctl, "--config", str(cfg), "status"]),
        ("ishowctl status --json", [ctl, "--config", str(cfg), "status", "--json"]),
        ("ishowctl history gpu_temperature_celsius --step 1d (a year of 10 s data)",
         [ctl, "--config", str(cfg), "history", "gpu_temperature_celsius", "--since", since, "--until", until,
          "--step", "1d"]),
        ("ishowctl history cpu_utilization_percent --step 1h --since 7d-window",
         [ctl, "--config", str(cfg), "history", "cpu_utilization_percent", "--since",
          datetime.fromtimestamp(last - 7 * 86400, timezone.utc).isoformat(), "--until", until, "--step", "1h"]),
        ("ishowctl history cpu_utilization_percent --step 5m over 1 day (per-minute rollups)",
         [ctl, "--config", str(cfg), "history", "cpu_utilization_percent", "--since",
          datetime.fromtimestamp(last - 86400, timezone.utc).isoformat(), "--until", until, "--step", "5m"]),
        ("ishowctl history cpu_utilization_percent --step 10s over 1 day (raw chunks)",
         [ctl, "--config", str(cfg), "history", "cpu_utilization_percent", "--since",
          datetime.fromtimestamp(last - 86400, timezone.utc).isoformat(), "--until", until, "--step", "10s"]),
    ]
    print(f"$ python bench/cli_latency.py --runs {args.runs}   # store: {store.stat().st_size / 1e6:.1f} MB")
    baseline = median_wall([sys.executable, "-c", "pass"], args.runs)
    print(f"{'python -c pass (interpreter start, the yardstick)':75} {baseline * 1e3:7.1f} ms   1.0x")
    for label, argv in runs:
        took = median_wall(argv, args.runs)
        print(f"{label:75} {took * 1e3:7.1f} ms {took / baseline:5.1f}x")


if __name__ == "__main__":
    main()
