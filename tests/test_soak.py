"""The accelerated soak (``tests/torture_soak.py``): simulated days at a 1 s interval through the store's
API and the log ingestion, in a process of its own; its memory, its WAL and every rollup checked.

``ISHOWD_SOAK_DAYS`` sets the length (default 1: about half a minute on two cores);
``python bench/torture.py --soak-days 7`` runs the week.
"""
from __future__ import annotations

import os
import sqlite3

import pytest

from torture_soak import HOUR, rss_growth, run, verify, warm_up_hours

DAYS = float(os.environ.get("ISHOWD_SOAK_DAYS", "1"))
HELD_GROWTH_LIMIT = 1 << 20        # what a leak grows: RSS once the C heap's free memory is handed back
RSS_GROWTH_LIMIT = 4 << 20         # VmRSS as it is: that plus what glibc keeps for later (see torture_soak)
# The WAL is checkpointed every 1000 pages (4 MiB at 4 KiB pages) and truncated back to 1 MiB
# (journal_size_limit); a seal's transaction may carry it past the first before it is checkpointed.
WAL_LIMIT = 8 << 20

pytestmark = pytest.mark.torture


def test_a_simulated_day_keeps_memory_flat_the_wal_bounded_and_the_rollups_exact(tmp_path):
    figures = run(tmp_path, DAYS)
    base, top, held_growth = rss_growth(figures, "held")
    rss_base, rss_top, rss_grown = rss_growth(figures, "rss")
    print(f"{DAYS:g} simulated days of 1 s ticks ({figures['series']} series) and {figures['records']} records "
          f"in {figures['seconds']:.1f} s; after a {warm_up_hours(figures)} h warm-up: RSS held "
          f"{base / 2**20:.2f} MiB, at most {top / 2**20:.2f} after (+{held_growth / 2**10:.0f} KiB); VmRSS "
          f"{rss_base / 2**20:.2f} MiB, at most {rss_top / 2**20:.2f} after (+{rss_grown / 2**10:.0f} KiB); "
          f"WAL at most {figures['wal_max'] / 2**20:.2f} MiB")
    assert held_growth <= HELD_GROWTH_LIMIT, [h["held"] for h in figures["hourly"]]
    assert rss_grown <= RSS_GROWTH_LIMIT, [h["rss"] for h in figures["hourly"]]
    assert figures["wal_max"] <= WAL_LIMIT
    problems = verify(tmp_path, figures)
    assert not problems, "\n".join(problems[:20])


def test_the_soak_checks_see_a_leak_a_changed_rollup_and_a_lost_record(tmp_path):
    """The checks are not vacuous: a soak that keeps 1 MiB an hour on purpose, and its store made wrong
    on purpose."""
    from ishowd.store import codec

    figures = run(tmp_path, 4 * HOUR / 86400, leak_kib_per_hour=1024)
    assert rss_growth(figures, "held")[2] > HELD_GROWTH_LIMIT
    assert verify(tmp_path, figures) == []
    conn = sqlite3.connect(tmp_path / "soak.db")
    sid = conn.execute("SELECT id FROM series WHERE name = 'soak_1_ratio'").fetchone()[0]
    hour = figures["start"]
    blob = conn.execute("SELECT data FROM chunks WHERE kind = '1m' AND series_id = ? AND start_ts = ?",
                        (sid, hour)).fetchone()[0]
    ts, cols = codec.decode(blob)
    cols[3][7] += 1000.0                                 # one minute's sum
    conn.execute("UPDATE chunks SET data = ? WHERE kind = '1m' AND series_id = ? AND start_ts = ?",
                 (codec.encode(ts, cols), sid, hour))
    conn.execute("DELETE FROM rtf_records WHERE ts = (SELECT min(ts) FROM rtf_records)")
    conn.commit()
    conn.close()
    found = "\n".join(verify(tmp_path, figures))
    assert f"soak_1 hour {hour}: 1m rollups differ" in found
    assert "1 lost" in found
    assert "history soak_1_ratio{} step 60" in found and "history soak_1_ratio{} step 300" in found
