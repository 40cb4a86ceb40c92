"""A full disk under the store, and the store taken away under the running daemon.

The store lives on a small tmpfs of its own that a filler file fills; the daemon is the installed
``ishowd run`` and the backend the stand-in writing its real log (on another file system), so
what is checked is what an operator would see: the journal, the store, the WAL's size.
"""
from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from ishowd.metrics import Sample, declare
from ishowd.store.reader import Reader
from ishowd.store.writer import WAL_SIZE_LIMIT, Store

from backend_harness import Harness, stored, truth
from conftest import entry_point, write_config
from mounts import fill, mount_tmpfs, unmount
from standin_backend import StandinBackend

T0 = 1_767_225_600
# The WAL checkpoints itself at 1000 pages (SQLite's default): with its header, each frame's and
# one more log batch's worth of pages (128 KiB), this is the most it may ever hold.
WAL_BOUND = 32 + (1000 + 64) * (4096 + 24)


@pytest.fixture
def small_fs(tmp_path):
    """``tmp_path/state``: a file system of 8 MiB for the store alone, unmounted whatever happens."""
    where = tmp_path / "state"
    mount_tmpfs(where, "size=8m")
    try:
        yield where
    finally:
        unmount(where)


def wait_for(predicate, what: str, timeout: float = 60.0, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out waiting for {what}")


def wal_size(db: str) -> int:
    try:
        return os.stat(db + "-wal").st_size
    except FileNotFoundError:
        return 0


@pytest.fixture
def env(small_fs, tmp_path):
    b = StandinBackend(tmp_path / "logs" / "backend.log")
    (tmp_path / "logs").mkdir()
    b.start()
    h = Harness(tmp_path, backend_url=b.url)
    yield h, b
    h.close()        # kills a daemon still running: the mount can go
    b.stop()


def daemon_log(h: Harness) -> str:
    h.out.flush()
    return (h.dir / "daemon.log").read_text(errors="replace")


def test_a_full_disk_is_said_once_survived_and_every_log_record_lands_exactly_once(env):
    h, b = env
    h.start()
    for _ in range(20):
        b.synth()
    assert h.wait_count(len(b.emitted)) == len(b.emitted)
    filler = fill(Path(h.db).parent)
    # the backend goes on logging syntheses; each tick and each ingest run now fails to commit
    wal_seen = [wal_size(h.db)]

    def synthesise_until(predicate, what: str, timeout: float = 60.0):
        def step():
            b.synth()
            b.chat()
            wal_seen.append(wal_size(h.db))
            return predicate()
        return wait_for(step, what, timeout, poll=0.1)

    synthesise_until(lambda: "store writes failing" in daemon_log(h), "the first failed write")
    failed_at = time.monotonic()
    # the outage goes on for several ticks (1 s each) and ingest runs, with records still coming
    synthesise_until(lambda: time.monotonic() - failed_at > 6, "six seconds of outage")
    during = daemon_log(h)
    assert during.count("store writes failing") == 1, during
    assert "database or disk is full" in during and "retrying each tick" in during
    assert "Traceback" not in during and "failed:" not in during, during
    emitted_during = len(b.emitted)
    assert h.count() < emitted_during          # what came during the outage is not in the store yet
    # free a little only (a quarter of the file system): the WAL must not swallow it
    os.truncate(filler, filler.stat().st_size - (2 << 20))
    synthesise_until(lambda: "store writes recovered" in daemon_log(h), "the recovery")
    assert wal_size(h.db) <= WAL_SIZE_LIMIT      # checkpointed and truncated on the way back
    assert h.wait_count(len(b.emitted)) == len(b.emitted)
    check_exactly_once(h, b)
    after = daemon_log(h)
    assert after.count("store writes failing") == 1 and after.count("store writes recovered") == 1, after
    recovered = next(line for line in after.splitlines() if "store writes recovered" in line)
    assert re.search(r"\d+ ticks? lost", recovered) and "log-ingest" in recovered, recovered
    assert "Traceback" not in after, after
    assert max(wal_seen) <= WAL_BOUND, f"the WAL grew to {max(wal_seen)} bytes"
    h.stop()
    conn = sqlite3.connect(f"file:{h.db}?mode=ro", uri=True)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


def check_exactly_once(h: Harness, b: StandinBackend) -> None:
    assert stored(h) == truth(b.emitted)
    assert h.counter("ingest", "duplicates") == 0   # exactly once by positions, not by the uniqueness guard


def test_freeing_a_little_brings_writes_back_though_the_wal_holds_more(small_fs):
    """The WAL holds pages the store file had no room for: the checkpoint before the next try puts
    them in the space freed and truncates the WAL, rather than the WAL growing into that space and
    filling the disk again a few writes later."""
    metric_set = [declare(f"test_full_{i}_ratio", "ratio", "disk-full test") for i in range(40)]
    db = small_fs / "s.db"
    store = Store(db)
    try:
        store.db.execute("PRAGMA wal_autocheckpoint=0")  # no checkpoint for a while (a reader held its snapshot)
        t = T0
        for _ in range(600):
            store.write(t, [Sample(m, float(t % 89)) for m in metric_set])
            t += 10
        filler = fill(small_fs)
        with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
            while True:
                store.write(t, [Sample(m, 1.0) for m in metric_set])
                t += 10
        held = wal_size(str(db))
        assert held > 2 << 20
        os.truncate(filler, filler.stat().st_size - (512 << 10))   # a sixth of what the WAL holds
        store.shrink_wal()
        assert wal_size(str(db)) == 0
        for _ in range(200):      # a page or more each: more than the space freed, in WAL frames alone
            store.write(t, [Sample(m, 2.0) for m in metric_set])
            t += 10
    finally:
        store.close()


def test_a_write_lost_to_a_full_disk_leaves_no_trace_in_the_next_ones(small_fs):
    """A tick that created a series and failed: its series id must not be handed to the next series."""
    db = small_fs / "s.db"
    first, second = declare("test_full_first_ratio", "ratio", "x"), declare("test_full_second_ratio", "ratio", "x")
    store = Store(db)
    try:
        store.write(T0, [Sample(first, 0.0, {})])
        store.checkpoint()                       # an empty WAL: the next commit needs new blocks
        filler = fill(small_fs)
        new = declare("test_full_new_ratio", "ratio", "a series first seen during the outage")
        with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
            store.write(T0 + 10, [Sample(new, 1.0)])
        os.unlink(filler)
        store.write(T0 + 20, [Sample(second, 2.0)])       # another new series
        store.write(T0 + 30, [Sample(new, 3.0)])
    finally:
        store.close()
    reader = Reader(str(db))
    try:
        got = {(x.name, x.ts): x.value for x in reader.latest(0)}
    finally:
        reader.close()
    assert got == {("test_full_first_ratio", T0): 0.0, ("test_full_second_ratio", T0 + 20): 2.0,
                   ("test_full_new_ratio", T0 + 30): 3.0}


# --- the store taken away ------------------------------------------------------------------------

def head_rows(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT count(*) FROM head").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


@pytest.mark.parametrize("how", ["renamed", "deleted"])
def test_a_store_taken_away_stops_the_daemon_with_one_clear_line(tmp_path, how):
    """Writing on would go where no reader looks (and, for a deleted file, hold its space until
    exit): the daemon stops with exit 1 (systemd starts it again, on a new store); a renamed store
    is left whole, its WAL checkpointed into it, and no WAL with frames is left at the old name."""
    cfg = write_config(tmp_path, sampling={"interval": "1s"})
    db = tmp_path / "ishowd.db"
    proc = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: head_rows(db) >= 2, "two ticks")
        moved = tmp_path / "kept.db"
        if how == "renamed":
            os.rename(db, moved)
        else:
            os.unlink(db)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 1, err
    lines = [ln for ln in err.splitlines() if "while ishowd was writing it" in ln]
    assert len(lines) == 1 and "stopping" in lines[0] and "Traceback" not in err, err
    if how == "renamed":
        conn = sqlite3.connect(f"file:{moved}?mode=ro", uri=True)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("SELECT count(*) FROM head").fetchone()[0] >= 2
        conn.close()
    # No frames wait at the old name: SQLite would lay them over a database moved there later.
    backup = tmp_path / "backup.db"
    store = Store(backup)
    store.write(time.time() - 60, [Sample(declare("test_backup_ratio", "ratio", "x"), 0.5)])
    store.close()
    os.rename(backup, db)
    assert head_rows(db) == 1
    again = subprocess.run([entry_point("ishowd"), "run", "--once", "--config", str(cfg)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert head_rows(db) == 2
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
