"""Where one core's time goes when ishowd scans a backend log: per phase, per GB.

    python bench/ingest_phases.py                       # bench/out/backend-1000MB.log (made by ingest_log.py)
    python bench/ingest_phases.py --log path/to/backend.log

Runs the catch-up workers' code (``scanworker.scan_chunk``) over the file in
4 MiB batches in this one process, with ``logformat``'s phases timed by
wrapping them, and the pickling a worker does on top. Committing is not
here (``ingest_log.py`` measures the whole).
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ishowd.backend import logformat as lf, scanworker  # noqa: E402

PHASES = {"_events": "synthesis events", "_noise_lines": "noise lines (regex pass)",
          "_status_digits": "HTTP status classes (regex pass)", "_count_levels": "WARN/ERROR and start lines",
          "_error_lines": "error words in noise lines"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log", default=str(HERE / "out" / "backend-1000MB.log"))
    ap.add_argument("--batch", type=int, default=4 << 20)
    args = ap.parse_args()
    if not os.path.exists(args.log):
        sys.exit(f"{args.log}: no such file (python bench/ingest_log.py --keep makes one)")
    spent: dict[str, float] = {}

    def timed(name):
        f = getattr(lf, name)

        def g(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t
        setattr(lf, name, g)
    for name in (*PHASES, "scan_buffer"):
        timed(name)
    size = os.path.getsize(args.log)
    off, pickling, records = 0, 0.0, 0
    t0 = time.perf_counter()
    while off < size:
        batch = scanworker.scan_chunk(args.log, off, min(args.batch, size - off), False, lf.DEFAULT_IGNORE, "x")
        t = time.perf_counter()
        pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        pickling += time.perf_counter() - t
        records += len(batch.rows)
        if not batch.consumed:
            break
        off += batch.consumed
    total = time.perf_counter() - t0
    gb = size / 1e9
    rest = spent["scan_buffer"] - sum(spent.get(n, 0.0) for n in PHASES)
    print(f"{args.log}: {size / 1e6:.0f} MB, {records} records, {total / gb:.2f} s per GB in all")
    for name, what in PHASES.items():
        print(f"  {what:40s} {spent.get(name, 0.0) / gb:.3f} s/GB")
    print(f"  {'the rest of the scan':40s} {rest / gb:.3f} s/GB")
    print(f"  {'reading, rows, aggregates':40s} {(total - spent['scan_buffer'] - pickling) / gb:.3f} s/GB")
    print(f"  {'pickling (a worker sends it back)':40s} {pickling / gb:.3f} s/GB")
    print("command: python bench/ingest_phases.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
