"""The daemon: ticks, failing collectors, SIGTERM, readers holding snapshots, clock steps."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time
from datetime import datetime

import pytest

from ishowd import catalog
from ishowd import collectors
from ishowd.collectors import Collector
from ishowd.daemon import Daemon
from ishowd.metrics import Sample, declare
from ishowd.specs.host import MEM_TOTAL

from conftest import entry_point, write_config

FLAKY = declare("test_flaky_ratio", "ratio", "a test collector's reading", group="host")


def wait_for(predicate, timeout=30.0, what="condition"):
    """Poll a condition with a deadline (never a fixed sleep that hopes to win a race)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def ro(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def ticks(path) -> dict[int, int]:
    """{head row id: samples in it}: one row per tick (two ticks may share a second). The jobs'
    metrics are left out: they go into a tick once a minute, not into every one."""
    from ishowd.store.codec import unpack_tick
    try:
        conn = ro(path)
        try:
            jobs = {sid for (sid,) in conn.execute("SELECT id FROM series WHERE name LIKE 'ishowd_job_%'")}
            return {rowid: sum(1 for sid, _ in unpack_tick(blob) if sid not in jobs)
                    for rowid, blob in conn.execute("SELECT id, data FROM head ORDER BY id")}
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return {}


def test_failing_collector_costs_only_itself(tmp_path, monkeypatch):
    class Broken(Collector):
        name = "broken"
        metrics = (FLAKY,)

        def collect(self, ctx):
            raise OSError(11, "Resource temporarily unavailable")

    class Malformed(Collector):
        name = "malformed"
        metrics = (FLAKY,)

        def collect(self, ctx):
            return [Sample(FLAKY, float("nan")), Sample(FLAKY, 1.0, {"bogus": "x"}), Sample(FLAKY, 0.5),
                    Sample(FLAKY, "0.7"), Sample(FLAKY, 0.8, ["bogus"]), Sample(MEM_TOTAL, 1.0),
                    Sample("test_flaky_ratio", 0.9), ("test_flaky_ratio", 0.95)]

    monkeypatch.setitem(collectors.REGISTRY.classes, "broken", Broken)
    monkeypatch.setitem(collectors.REGISTRY.classes, "malformed", Malformed)
    cfg = catalog.load_config(str(write_config(tmp_path)))
    daemon = Daemon(cfg)
    try:
        daemon.tick(now=1_767_225_600)
    finally:
        daemon.close()
    from ishowd.store.reader import Reader
    rows = {r.name + r.labels_text: r.value for r in Reader(str(tmp_path / "ishowd.db")).latest(0)}
    assert rows['ishowd_collector_success{"collector":"broken"}'] == 0.0
    assert rows['ishowd_collector_success{"collector":"host"}'] == 1.0
    assert rows['ishowd_collector_success{"collector":"malformed"}'] == 1.0
    assert rows["test_flaky_ratio"] == 0.5            # only the well-formed sample of them all
    assert rows["memory_total_bytes"] > 1.0            # the tick itself went through, the host's own


def test_run_once_then_status(tmp_path):
    cfg = write_config(tmp_path)
    proc = subprocess.run([entry_point("ishowd"), "run", "--once", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(ticks(tmp_path / "ishowd.db")) == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_finishes_the_tick_and_exits_zero(tmp_path, sig):
    cfg = write_config(tmp_path, sampling={"interval": "1s"})
    db = tmp_path / "ishowd.db"
    proc = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(ticks(db)) >= 2, what="two ticks")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "finishing the work in flight" in err and "stopped" in err
    counts = ticks(db)
    assert len(set(counts.values())) == 1, f"a tick was cut short: {counts}"
    # the store was closed cleanly: the WAL was checkpointed into the main file
    assert not (tmp_path / "ishowd.db-wal").exists() or (tmp_path / "ishowd.db-wal").stat().st_size == 0


def test_sighup_neither_kills_nor_stops_the_daemon(tmp_path):
    """SIGHUP's default action killed it (exit 129, no clean stop); it reloads the config now
    (tests/test_systemd.py: what a reload applies, carries over and refuses)."""
    cfg = write_config(tmp_path, sampling={"interval": "1s"})
    db = tmp_path / "ishowd.db"
    proc = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(ticks(db)) >= 1, what="the first tick")
        proc.send_signal(signal.SIGHUP)
        after_hup = len(ticks(db))
        wait_for(lambda: len(ticks(db)) >= after_hup + 2, what="two ticks after SIGHUP")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"configuration reloaded from {cfg}: nothing changed" in err


def test_a_reader_holding_a_snapshot_neither_blocks_nor_grows_the_wal_forever(tmp_path):
    from ishowd.store.writer import WAL_SIZE_LIMIT, Store
    metric_set = [declare(f"test_wal_{i}_ratio", "ratio", "wal test") for i in range(40)]
    path = tmp_path / "s.db"
    store = Store(path)
    store.write(1_767_225_600, [Sample(m, 0.0) for m in metric_set])
    reader = ro(path)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM head").fetchone()[0] == 1
    t = 1_767_225_610
    for _ in range(1500):  # several autocheckpoints' worth while the snapshot is held
        store.write(t, [Sample(m, float(t % 97)) for m in metric_set])
        t += 10
    assert reader.execute("SELECT count(*) FROM head").fetchone()[0] == 1  # its snapshot
    grown = (tmp_path / "s.db-wal").stat().st_size
    assert grown > 2 * WAL_SIZE_LIMIT  # the reader really pinned the WAL
    reader.rollback()
    reader.close()
    for _ in range(1100):  # the next autocheckpoint completes and the WAL is reset and truncated
        store.write(t, [Sample(m, 1.0) for m in metric_set])
        t += 10
    store.close()
    assert (tmp_path / "s.db-wal").stat().st_size <= WAL_SIZE_LIMIT if (tmp_path / "s.db-wal").exists() else True
    conn = ro(path)
    # nothing was lost: every tick is in the head or sealed into chunks
    assert conn.execute("SELECT coalesce(sum(length(data)), 0) / 12 FROM head").fetchone()[0] + \
        conn.execute("SELECT coalesce(sum(count), 0) FROM chunks WHERE kind = 'raw'").fetchone()[0] == 40 * 2601


# --- the clock ------------------------------------------------------------------------


def stepped_wall(monkeypatch):
    """A wall clock a test can step (``offset[0] += seconds``), seen by APScheduler and the jobs'
    scheduler alike: (offset, wall)."""
    import apscheduler.executors.base as aps_executors
    import apscheduler.schedulers.base as aps_base

    from ishowd import schedule

    offset = [0.0]

    def wall() -> float:
        return time.time() + offset[0]

    class SteppedDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp(wall(), tz)

    for module in (aps_base, aps_executors, schedule):
        monkeypatch.setattr(module, "datetime", SteppedDatetime)
    return offset, wall


def test_kill_9_loses_at_most_the_tick_in_flight(tmp_path):
    """Every committed tick survives SIGKILL; the store reopens and goes on."""
    cfg = write_config(tmp_path, sampling={"interval": "1s"})
    db = tmp_path / "ishowd.db"
    for round_ in range(3):
        before = ticks(db)
        proc = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            def two_more():
                now = ticks(db)
                return now if len(now) >= len(before) + 2 else None
            seen = wait_for(two_more, what=f"ticks in round {round_}")
        finally:
            proc.kill()
            proc.wait(10)
        after = ticks(db)
        # what was committed before the kill is all there, and every tick is whole
        assert set(seen) <= set(after)
        assert len(set(after.values())) == 1, after
    proc = subprocess.run([entry_point("ishowd"), "run", "--once", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(ticks(db)) == len(after) + 1


def test_a_second_writer_on_the_same_store_is_refused(tmp_path):
    cfg = write_config(tmp_path, sampling={"interval": "1s"})
    proc = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(ticks(tmp_path / "ishowd.db")) >= 1, what="the first daemon's tick")
        second = subprocess.run([entry_point("ishowd"), "run", "--once", "--config", str(cfg)],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert f"another ishowd (pid {proc.pid})" in second.stderr and "Traceback" not in second.stderr
    finally:
        proc.terminate()
        proc.wait(20)
    # once the first is gone, the store is free again
    third = subprocess.run([entry_point("ishowd"), "run", "--once", "--config", str(cfg)],
                           capture_output=True, text=True, timeout=60)
    assert third.returncode == 0, third.stderr
