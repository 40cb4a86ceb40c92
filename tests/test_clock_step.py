"""Wall-clock steps: a stopped daemon is never reported healthy, and no sample is counted twice.

The real daemon runs under libfaketime (Debian's ``faketime``), whose offset
is read from a file on every call, so the test steps the daemon's wall clock
while it runs; its monotonic clocks stay real, as they do under a real step.
"""
from __future__ import annotations

import glob
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from ishowd.metrics import Sample, declare
from ishowd.store.reader import Reader
from ishowd.store.writer import HOUR, Store

from conftest import entry_point, run, write_config
from test_daemon import wait_for

LIBFAKETIME = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
T = declare("test_step_celsius", "celsius", "a test metric", group="thermal")


def newest_write(db) -> tuple[int, int]:
    """(ts, mono) of the newest row by write order; (0, 0) before the daemon made the store."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT ts, mono FROM head ORDER BY id DESC LIMIT 1").fetchone() or (0, 0)
    except sqlite3.OperationalError:  # no file or no tables yet
        return 0, 0


def as_if_stopped_for(db, seconds: int) -> None:
    """Move every stamp back as if the last write were ``seconds`` older (time passing, without the wait)."""
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE head SET ts = ts - ?, mono = mono - ?", (seconds, seconds * 1000))


def status(cfg) -> dict:
    proc = run(entry_point("ishowctl"), "--config", str(cfg), "status", "--json")
    data = json.loads(proc.stdout)
    # 3 for a daemon not writing, as `systemctl status` for a stopped unit
    assert proc.returncode == (0 if data["daemon"]["writing"] else 3), proc.stderr
    return data


@pytest.mark.torture
@pytest.mark.skipif(not LIBFAKETIME, reason="libfaketime is not installed (Debian package faketime)")
def test_a_daemon_stopped_after_a_step_forward_and_back_is_not_reported_writing(tmp_path):
    cfg = write_config(tmp_path, sampling={"interval": "1s"})
    db = tmp_path / "ishowd.db"
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    env = dict(os.environ, LD_PRELOAD=LIBFAKETIME[0], FAKETIME_TIMESTAMP_FILE=str(offset),
               FAKETIME_NO_CACHE="1", FAKETIME_DONT_FAKE_MONOTONIC="1")
    env.pop("ISHOWD_CONFIG", None)
    proc = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: newest_write(db)[0] > 0, what="the first tick")
        offset.write_text("+1d\n")
        wait_for(lambda: newest_write(db)[0] > time.time() + 20 * HOUR, what="a tick stamped during the step")
        offset.write_text("+0\n")
        wait_for(lambda: abs(newest_write(db)[0] - time.time()) < 30, what="a tick after the step back")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert "Traceback" not in proc.stderr.read()
    with sqlite3.connect(db) as conn:  # the rows stamped a day ahead are still the newest by stamp
        assert conn.execute("SELECT max(ts) FROM head").fetchone()[0] > time.time() + 20 * HOUR

    as_if_stopped_for(db, 40)
    daemon = status(cfg)["daemon"]
    assert daemon["writing"] is False and 38 <= daemon["age_seconds"] <= 60, daemon
    assert all(m["ts"] < time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 60))
               for m in status(cfg)["metrics"]), "a sample stamped during the step was shown as current"
    check = run(entry_point("ishowctl"), "--config", str(cfg), "check")
    assert check.returncode == 3 and "has not written for" in check.stdout, check.stdout


def test_a_sample_from_the_future_of_another_boot_is_not_recent(tmp_path):
    """With no monotonic stamp of this boot to go by, a stamp ahead of the clock has no age."""
    cfg = write_config(tmp_path)
    db = tmp_path / "ishowd.db"
    store = Store(db)
    store.write(time.time() + 3600, [Sample(T, 40.0, {})])
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE store_meta SET value = 'another-boot' WHERE key = 'boot_id'")
    daemon = status(cfg)["daemon"]
    assert daemon["writing"] is False and daemon["age_seconds"] is None, daemon
    assert 3500 < daemon["ahead_seconds"] <= 3600, daemon
    plain = run(entry_point("ishowctl"), "--config", str(cfg), "status")
    assert "in the future" in plain.stdout and "NOT WRITING" in plain.stdout, plain.stdout
    check = run(entry_point("ishowctl"), "--config", str(cfg), "check")
    assert check.returncode == 3 and "in the future" in check.stdout, check.stdout


def test_a_write_of_this_boot_is_aged_by_the_monotonic_clock(tmp_path):
    """The clock stepped back just after the daemon's last tick: that tick is a second old, not an hour ahead."""
    cfg = write_config(tmp_path)
    store = Store(tmp_path / "ishowd.db")
    store.write(time.time() + 3600, [Sample(T, 40.0, {})])
    store.close()
    daemon = status(cfg)["daemon"]
    assert daemon["writing"] is True and daemon["age_seconds"] < 5, daemon


def test_rows_written_again_into_a_sealed_hour_are_counted_once_and_sealed_when_it_ends(tmp_path):
    db = tmp_path / "s.db"
    hour = (int(time.time()) // HOUR - 3) * HOUR
    store = Store(db)
    for t in range(hour, hour + HOUR, 60):          # one sample a minute, values 0..59
        store.write(t, [Sample(T, float((t - hour) // 60), {})])
    assert store.maintain(hour + 2 * HOUR + 1) == 1  # sealed the hour
    # the clock steps back to hour + 30 min: ticks land in the sealed hour again, some on seconds it has
    for t in range(hour + 30 * 60, hour + 40 * 60, 30):
        store.write(t, [Sample(T, 100.0, {})])
        store.maintain(t)
    reader = Reader(str(db))
    sid = reader.series(T.name)[0].id
    ts, vals = reader.raw(sid, hour, hour + HOUR)
    assert len(ts) == len(set(ts)) == 60 + 10      # 20 late ticks, 10 on seconds the chunk already has
    assert vals[ts.index(hour + 30 * 60)] == 30.0   # the first value written for a second wins
    (b,) = reader.history(T.name, {}, hour, hour + HOUR, HOUR)
    assert b.count == 70 and b.max == 100.0
    reader.close()
    # the hour ends (by the stepped clock): its late rows are sealed at once, not an hour later
    store.maintain(hour + HOUR)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM head WHERE ts < ?", (hour + HOUR,)).fetchone()[0] == 0
    store.close()
    reader = Reader(str(db))
    (b,) = reader.history(T.name, {}, hour, hour + HOUR, HOUR)
    (m,) = [x for x in reader.history(T.name, {}, hour + 30 * 60, hour + 31 * 60, 60)]
    assert (b.count, b.max) == (70, 100.0) and m.count == 2   # 30:00 (the first value) and 30:30
    reader.close()
