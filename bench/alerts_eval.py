#!/usr/bin/env python3
"""CPU cost of judging the default alert rules after a tick, with a year of data in the store.

    python bench/alerts_eval.py [--days 365] [--ticks 3000] [--out bench/out/alerts_year.db] [--reuse]

Builds a store holding a year of the reference workload (bench/workload.py:
40 series every 10 s, which include the GPU temperature and lock, memory,
backend_up and backend RSS) plus per-request ``tts_rtf`` records (one a
minute, api and chat) and the backend log's error counters, through
``Store.bulk_load`` with default retention. Then it runs the daemon's loop:
each tick writes every series through ``Store.write`` (and the requests of
that tick, stamped a few seconds in the past as log ingestion does), seals
as hours pass, and evaluates the built-in rule set with the ``Evaluator``
the alerts task uses. Only ``Evaluator.run`` is timed (``time.process_time``:
user + system CPU of this process); it includes draining what the tick
wrote, every window and every rule. The first evaluation, which loads the
windows from the store (24 h of backend RSS, an hour of RTF), is reported
apart.
"""
from __future__ import annotations

import argparse
import logging
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from workload import HOUR, INTERVAL, Generator, series_specs  # noqa: E402

from ishowd import catalog  # noqa: E402
from ishowd.catalog import registry  # noqa: E402
from ishowd.metrics import Sample  # noqa: E402
from ishowd.store.writer import Store  # noqa: E402

T_END = 1_795_564_800  # 2026-11-26T00:00:00Z, as bench/store_year.py
VOICES = ("walter", "demo")


def extra_specs():
    """Series the reference workload lacks: per-request RTF and the log's error counters."""
    return ([("tts_rtf", {"engine": "f5", "voice": v, "source": s}) for v in VOICES for s in ("api", "chat")]
            + [("backend_log_errors_total", {"level": lvl}) for lvl in ("ERROR", "WARN")])


def build(out: Path, days: int) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(out) + suffix).unlink(missing_ok=True)
    store = Store(out)
    specs = series_specs()
    gens = [Generator(kind, i) for i, (_, _, kind) in enumerate(specs)]
    rng = random.Random(7)
    errors = {"ERROR": 0.0, "WARN": 0.0}
    start = T_END - days * 86400
    n = HOUR // INTERVAL
    for h in range(days * 24):
        hour_start = start + h * HOUR
        ts = list(range(hour_start, hour_start + HOUR, INTERVAL))
        for (name, labels, _), g in zip(specs, gens):
            store.bulk_load(name, labels, ts, g.hour(n))
        for name, labels in extra_specs():
            if name == "tts_rtf":     # one request a minute per voice and source, at an odd second
                rts = [hour_start + m * 60 + rng.randrange(60) for m in range(60)]
                store.bulk_load(name, labels, rts, [round(rng.uniform(0.25, 0.32), 3) for _ in rts])
            else:
                vals = []
                for _ in ts:
                    if rng.random() < 0.002:
                        errors[labels["level"]] += 1
                    vals.append(errors[labels["level"]])
                store.bulk_load(name, labels, ts, vals)
        if h % 24 == 23:
            store.prune(hour_start + HOUR)
    store.prune(T_END)
    store.checkpoint()
    store.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--ticks", type=int, default=3000)
    ap.add_argument("--out", default="bench/out/alerts_year.db")
    ap.add_argument("--reuse", action="store_true", help="use --out as it is when it exists")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not (args.reuse and out.exists()):
        build(out, args.days)
    built = time.perf_counter() - t0
    work = out.with_name(out.stem + ".run.db")
    for suffix in ("", "-wal", "-shm"):
        Path(str(work) + suffix).unlink(missing_ok=True)
    work.write_bytes(out.read_bytes())    # the run appends a head: keep the year store pristine

    logging.basicConfig(level=logging.WARNING)
    cfg = catalog.loads_config(f'[storage]\npath = "{work}"\n[exporter]\nlisten = ""\n', "<bench>")
    from ishowd.alerts.evaluator import Evaluator
    REGISTRY = registry()

    store = Store(work)
    specs = [(REGISTRY[name], labels) for name, labels, _ in series_specs()]
    gens = [Generator(kind, 1000 + i) for i, (_, _, kind) in enumerate(series_specs())]
    rtf = [(REGISTRY["tts_rtf"], labels) for name, labels in extra_specs() if name == "tts_rtf"]
    errs = [(REGISTRY["backend_log_errors_total"], labels) for name, labels in extra_specs()
            if name == "backend_log_errors_total"]
    rng = random.Random(11)
    ev = Evaluator(cfg, store)
    times = []
    first = None
    t = T_END
    for i in range(args.ticks + 1):
        t += INTERVAL
        batch = [Sample(m, g.hour(1)[0], labels) for (m, labels), g in zip(specs, gens)]
        batch += [Sample(m, 3.0 + (i // 500), labels) for m, labels in errs]
        if i % 6 == 0:              # a request a minute per voice and source, logged a few seconds ago
            batch += [Sample(m, round(rng.uniform(0.25, 0.32), 3), labels, t - rng.randrange(1, 9))
                      for m, labels in rtf]
        store.write(t, batch)
        store.maintain(t)
        c0 = time.process_time()
        ev.run(t)
        took = time.process_time() - c0
        if i == 0:
            first = took
        else:
            times.append(took)
    judged = sum(len(sd.rules) for sd in ev.engine.series.values())
    windows = sum(len(w.ts) - w.lo for sd in ev.engine.series.values() for w in sd.windows.values())
    ev.close()
    store.close()
    times.sort()
    us = [x * 1e6 for x in times]
    print(f"command: python bench/alerts_eval.py --days {args.days} --ticks {args.ticks}")
    print(f"python {platform.python_version()} on {platform.machine()}; store: {args.days} days of 40 series "
          f"every {INTERVAL}s + {len(extra_specs())} more ({out.stat().st_size / 1e6:.1f} MB"
          + (f", built in {built:.0f} s" if built > 1 else "") + ")")
    print(f"default rules: {len(ev.rules)}; (rule, series) pairs judged per tick: {judged}; "
          f"samples held in windows: {windows}; samples written per tick: {len(specs) + len(errs)} "
          f"(+ {len(rtf)} requests a minute)")
    print(f"first evaluation (loads the windows from the store): {first * 1e3:.1f} ms CPU")
    print(f"per tick over {len(us)} ticks: median {statistics.median(us):.0f} µs CPU, "
          f"mean {statistics.fmean(us):.0f} µs, p99 {us[int(0.99 * (len(us) - 1))]:.0f} µs, max {us[-1]:.0f} µs "
          f"(limit 1000 µs)")
    return 0 if statistics.median(us) < 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
