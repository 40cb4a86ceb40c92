"""A simulated year of the reference workload through the store's bulk API.

Prints the store's size with default retention, bytes per sealed raw sample,
and the naive layout's bytes per sample for comparison.

    python bench/store_year.py [--days 365] [--out bench/out/year.db]
"""
from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from workload import HOUR, INTERVAL, Generator, series_specs  # noqa: E402

from ishowd.store.writer import Store  # noqa: E402

T_END = 1_795_564_800  # 2026-11-26T00:00:00Z


def naive_bytes_per_sample(tmp: Path, hours: int = 24) -> float:
    """The layout the issue names as the naive one: (series_id, ts, value) WITHOUT ROWID."""
    path = tmp / "naive.db"
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE samples (series_id INTEGER, ts INTEGER, value REAL, PRIMARY KEY (series_id, ts)) "
                 "WITHOUT ROWID")
    specs = series_specs()
    gens = [Generator(kind, i) for i, (_, _, kind) in enumerate(specs)]
    n = HOUR // INTERVAL
    for h in range(hours):
        rows = []
        for sid, g in enumerate(gens):
            for j, v in enumerate(g.hour(n)):
                rows.append((sid, T_END + h * HOUR + j * INTERVAL, v))
        conn.executemany("INSERT INTO samples VALUES (?, ?, ?)", rows)
    conn.commit()
    conn.execute("VACUUM")
    conn.close()
    return path.stat().st_size / (len(specs) * n * hours)


def _metric(name):
    from ishowd.catalog import metric as get
    from ishowd.metrics import declare
    return get(name) or declare(name, "ratio", "bench workload series")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--out", default="bench/out/year.db")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(out) + suffix).unlink(missing_ok=True)
    specs = series_specs()
    gens = [Generator(kind, i) for i, (_, _, kind) in enumerate(specs)]
    store = Store(out)  # default retention: raw 14d, minute 90d, hour forever
    start = T_END - args.days * 86400
    n = HOUR // INTERVAL
    t0 = time.perf_counter()
    for h in range(args.days * 24 - 2):
        hour_start = start + h * HOUR
        ts = list(range(hour_start, hour_start + HOUR, INTERVAL))
        for (name, labels, _), g in zip(specs, gens):
            store.bulk_load(name, labels, ts, g.hour(n))
        if h % 24 == 23:  # the daemon prunes hourly; daily is enough to reuse freed pages here
            store.prune(hour_start + HOUR)
    # The last two hours tick by tick, as the daemon writes them: a real head for `status`.
    from ishowd.metrics import Sample
    metrics = [_metric(name) for name, _, _ in specs]
    for t in range(T_END - 2 * HOUR, T_END, INTERVAL):
        store.write(t, [Sample(m, g.hour(1)[0], labels) for m, (_, labels, _), g in zip(metrics, specs, gens)])
        store.maintain(t)
    store.checkpoint()
    store.close()
    took = time.perf_counter() - t0
    size = out.stat().st_size
    conn = sqlite3.connect(out)
    raw_bytes, raw_samples = conn.execute(
        "SELECT sum(length(data)), sum(count) FROM chunks WHERE kind = 'raw'").fetchone()
    m_bytes, m_rows = conn.execute("SELECT sum(length(data)), sum(count) FROM chunks WHERE kind = '1m'").fetchone()
    h_bytes, hours = conn.execute("SELECT sum(length(data)), sum(count) FROM chunks WHERE kind = '1h'").fetchone()
    page = conn.execute("PRAGMA page_size").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0] * page
    conn.close()
    naive = naive_bytes_per_sample(out.parent)
    total_samples = len(specs) * n * args.days * 24
    print(f"$ python bench/store_year.py --days {args.days}")
    print(f"simulated {args.days} days x {len(specs)} series every {INTERVAL}s = {total_samples:,} samples "
          f"in {took:.0f} s ({total_samples / took / 1e3:.0f} k samples/s through Store.bulk_load)")
    print(f"store file with default retention: {size / 1e6:.1f} MB ({free / 1e6:.1f} MB of it free pages, "
          f"{page} B pages)")
    print(f"raw chunks (last 14 d): {raw_samples:,} samples in {raw_bytes / 1e6:.2f} MB = "
          f"{raw_bytes / raw_samples:.2f} bytes/sample (blob payload)")
    print(f"per-minute rollups (last 90 d): {m_rows:,} rows in {m_bytes / 1e6:.2f} MB = {m_bytes / m_rows:.2f} bytes/row")
    print(f"per-hour rollups (forever): {hours:,} rows in {h_bytes / 1e6:.2f} MB = {h_bytes / hours:.2f} bytes/row")
    print(f"naive (series_id, ts, value) WITHOUT ROWID table: {naive:.1f} bytes/sample; a year of raw samples "
          f"that way: {naive * total_samples / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
