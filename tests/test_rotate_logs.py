"""rotate-logs: archives under a writer appending thousands of lines a second, losing and doubling nothing.

A real writer process appends real backend records through O_APPEND (as the
backend's ``>>`` redirection does) while the rotation cuts the front off the
live file; the tailer's records and positions are checked against exactly
what the writer wrote. ``kill -9`` at each step of a rotation is repaired at
the next start.
"""
from __future__ import annotations

import gzip
import json
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ishowd import catalog
from ishowd.backend.ingest import Ingestor
from ishowd.jobs import JobContext
from ishowd.jobs.rotate_logs import RotateLogs, archive_name, recover
from ishowd.jobs.runner import JobRunner
from ishowd.process import Cancel
from ishowd.store.writer import Store

from conftest import entry_point, run, write_config
from mounts import mount_tmpfs, unmount
from test_daemon import wait_for

HERE = Path(__file__).parent

# Appends numbered backend records (one write each, O_APPEND) to backend.log and plain lines to
# frontend.log, about RATE lines a second, until the stop file appears; prints how many it wrote.
WRITER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {here!r})
    from standin_backend import line_api
    root, stop, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
    back = os.open(os.path.join(root, "logs", "backend.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    front = os.open(os.path.join(root, "logs", "frontend.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    base = 1_790_000_000_000_000
    n, start = 0, time.monotonic()
    while not os.path.exists(stop):
        for _ in range(50):
            os.write(back, line_api(base + n * 1000, f"line {{n}} " + "字" * (n % 40), elapsed_ms=1000 + n % 997))
            os.write(front, f"frontend {{n}}\\n".encode())
            n += 1
        ahead = n / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    print(n, flush=True)
""").format(here=str(HERE))


class Writer:
    def __init__(self, root: Path, rate: float = 3000):
        self.stop_file = root / "stop-writer"
        self.proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(self.stop_file), str(rate)],
                                     stdout=subprocess.PIPE, text=True)

    def stop(self) -> int:
        self.stop_file.write_text("")
        out, _ = self.proc.communicate(timeout=30)
        return int(out)


def deployment(tmp_path: Path) -> tuple[Path, object]:
    root = tmp_path / "ishowtts"
    (root / "logs").mkdir(parents=True)
    cfg = catalog.loads_config(f"""
[storage]
path = "{tmp_path / 'ishowd.db'}"
[deployment]
root = "{root}"
[rtf]
logs = ["{root / 'logs' / 'backend.log'}"]
batch_bytes = 131072
""", "test.toml")
    return root, cfg


def lines_of(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return [ln for ln in data.split(b"\n")[:-1] if ln.strip(b" ")]


def everything(root: Path, name: str) -> list[bytes]:
    """Every line of a log, archives (oldest first) then the live file, blank lines left out."""
    out = []
    for month in sorted((root / "logs" / "archive").glob("*")):
        for f in sorted(month.glob(f"{name}_*")):
            out += lines_of(f)
    return out + lines_of(root / "logs" / f"{name}.log")


def check_exactly_once(root: Path, written: int, db: Path) -> None:
    back = everything(root, "backend")
    assert len(back) == written
    numbers = [int(re.search(rb"=\x1b\[0mline (\d+) ", ln).group(1)) for ln in back]
    assert numbers == list(range(written)), "a backend line was lost, doubled or cut"
    front = everything(root, "frontend")
    assert front == [f"frontend {i}".encode() for i in range(written)]
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT count(*) FROM rtf_records").fetchone()[0]
        read = conn.execute("SELECT value FROM log_counters WHERE name = 'lines' AND label = 'synthesis'"
                            ).fetchone()
    assert stored == written and read is not None and read[0] == written, (stored, read)
    with sqlite3.connect(db) as conn:   # the tailer's position moved with each cut: it never saw a truncation
        assert conn.execute("SELECT count(*) FROM log_counters WHERE name = 'ingest' AND label = 'truncations'"
                            ).fetchone()[0] == 0


def rotate(cfg, store) -> dict:
    runner = JobRunner(cfg, store, {"rotate-logs": RotateLogs(cfg)})
    r = runner.run("rotate-logs")
    assert r.status == "ok", r.detail
    return r.result


def test_rotations_under_a_fast_writer_lose_and_double_no_line(tmp_path):
    root, cfg = deployment(tmp_path)
    store = Store(tmp_path / "ishowd.db")
    writer = Writer(root)
    try:
        wait_for(lambda: (root / "logs" / "backend.log").exists()
                 and (root / "logs" / "backend.log").stat().st_size > 600_000, what="some lines")
        results = []
        for _ in range(3):   # several in a row, the writer never pausing
            results.append(rotate(cfg, store))
            size = (root / "logs" / "backend.log").stat().st_size
            wait_for(lambda: (root / "logs" / "backend.log").stat().st_size > size + 200_000, what="more lines")
    finally:
        written = writer.stop()
    Ingestor(cfg, store).run()   # the tailer reads what came after the last rotation
    store.close()
    assert written > 2000
    assert all(r["files"]["logs/backend.log"]["how"] == "collapse" for r in results)
    assert all(r["files"]["logs/backend.log"]["cut"] > 0 for r in results)
    check_exactly_once(root, written, tmp_path / "ishowd.db")
    # the same day's runs went into one archive per log, beside the live file's directory
    (archive,) = (root / "logs" / "archive").glob("*/backend_*.log")
    assert archive == Path(archive_name(str(root / "logs" / "archive"), str(root / "logs" / "backend.log"),
                                        time.time()))


def test_a_tailer_far_behind_is_caught_up_before_the_cut(tmp_path):
    root, cfg = deployment(tmp_path)
    writer = Writer(root, rate=20000)
    wait_for(lambda: (root / "logs" / "backend.log").exists()
             and (root / "logs" / "backend.log").stat().st_size > 3_000_000, what="a backlog")
    written = writer.stop()
    store = Store(tmp_path / "ishowd.db")     # nothing ingested yet: the whole file is behind
    try:
        result = rotate(cfg, store)
        Ingestor(cfg, store).run()
    finally:
        store.close()
    assert result["files"]["logs/backend.log"]["bytes"] > 3_000_000
    check_exactly_once(root, written, tmp_path / "ishowd.db")


# The rotation's steps in a child process that kills itself with SIGKILL after step N.
CRASHER = textwrap.dedent("""
    import os, signal, sys
    from ishowd import catalog
    from ishowd.backend.ingest import LOG_LOCK, Ingestor
    from ishowd.jobs.rotate_logs import Rotation, _position
    from ishowd.store.writer import Store
    cfg = catalog.load_config(sys.argv[1]); steps = int(sys.argv[2])
    store = Store(cfg.storage.path)
    live, archive, log = sys.argv[3], sys.argv[4], cfg.rtf.logs[0]
    Ingestor(cfg, store).ingest(log)
    fd = os.open(live, os.O_RDWR)
    with store.transaction() as conn:
        row = _position(conn, log, os.fstat(fd))
    rot = Rotation(store, cfg, live, archive)
    rot.prepare(fd, row[7], row[5], log, collapse=True)
    for name in ("copy", "collapse", "blank", "commit")[:steps]:
        getattr(rot, name)(fd)
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 4], ids=["after-intent", "after-copy", "after-cut",
                                                        "after-blank", "after-commit"])
def test_kill_9_at_each_step_of_a_rotation_loses_and_doubles_nothing(tmp_path, steps):
    root, cfg = deployment(tmp_path)
    cfg_file = tmp_path / "ishowd.toml"
    cfg_file.write_text(f'[storage]\npath = "{tmp_path / "ishowd.db"}"\n[deployment]\nroot = "{root}"\n'
                        f'[rtf]\nlogs = ["{root / "logs" / "backend.log"}"]\nbatch_bytes = 131072\n')
    writer = Writer(root)
    try:
        wait_for(lambda: (root / "logs" / "backend.log").exists()
                 and (root / "logs" / "backend.log").stat().st_size > 400_000, what="some lines")
        live = root / "logs" / "backend.log"
        archive = archive_name(str(root / "logs" / "archive"), str(live), time.time())
        crash = subprocess.run([sys.executable, "-c", CRASHER, str(cfg_file), str(steps), str(live), archive],
                               capture_output=True, text=True, timeout=120)
        assert crash.returncode == -signal.SIGKILL, crash.stderr
        store = Store(tmp_path / "ishowd.db")   # the next start: the log task recovers first
        try:
            said = recover(store, cfg)
            assert said is None if steps == 4 else said, said
            rotate(cfg, store)                  # and rotation goes on working afterwards
        finally:
            store.close()
    finally:
        written = writer.stop()
    store = Store(tmp_path / "ishowd.db")
    try:
        Ingestor(cfg, store).run()
    finally:
        store.close()
    check_exactly_once(root, written, tmp_path / "ishowd.db")


def test_old_archives_are_compressed_then_deleted_and_nothing_else_is_touched(tmp_path):
    root, cfg = deployment(tmp_path)
    (root / "logs" / "backend.log").write_text("")
    archive = root / "logs" / "archive"
    old = {"202608/backend_20260801.log": 130, "202611/backend_20261110.log": 20, "202611/frontend_20261128.log": 3}
    for rel, _ in old.items():
        (archive / rel).parent.mkdir(parents=True, exist_ok=True)
        (archive / rel).write_text(f"{rel}\n")
    (archive / "202611" / "notes.txt").write_text("mine\n")
    store = Store(tmp_path / "ishowd.db")
    try:
        job = RotateLogs(cfg)
        ctx = JobContext(cfg, timeout=60, cancel=Cancel(), store=store, now=time.mktime((2026, 12, 1, 12, 0, 0, 0, 0, -1)))
        pruned, compressed = job.tidy(ctx, str(archive))
    finally:
        store.close()
    assert pruned == ["202608/backend_20260801.log"] and compressed == ["202611/backend_20261110.log"]
    assert not (archive / "202608").exists()
    assert gzip.decompress((archive / "202611/backend_20261110.log.gz").read_bytes()) == \
        b"202611/backend_20261110.log\n"
    assert (archive / "202611/frontend_20261128.log").exists() and (archive / "202611/notes.txt").exists()


def test_a_file_system_that_cannot_cut_falls_back_and_says_a_window_existed(tmp_path):
    mnt = tmp_path / "tmpfs"
    mount_tmpfs(mnt, "size=64m")
    try:
        root, cfg = deployment(mnt)
        writer = Writer(root)
        wait_for(lambda: (root / "logs" / "backend.log").exists()
                 and (root / "logs" / "backend.log").stat().st_size > 300_000, what="some lines")
        written = writer.stop()
        store = Store(tmp_path / "ishowd.db")
        try:
            runner = JobRunner(cfg, store, {"rotate-logs": RotateLogs(cfg)})
            r = runner.run("rotate-logs")
            Ingestor(cfg, store).run()
        finally:
            store.close()
        assert r.status == "ok" and "copied then truncated" in r.detail
        assert r.result["files"]["logs/backend.log"]["how"] == "copy-truncate"
        cfg_db = tmp_path / "ishowd.db"
        check_exactly_once(root, written, cfg_db)
    finally:
        unmount(mnt)


def test_jobs_run_rotate_logs_through_the_daemon_while_it_tails(tmp_path):
    root = tmp_path / "ishowtts"
    (root / "logs").mkdir(parents=True)
    log = root / "logs" / "backend.log"
    cfg = write_config(tmp_path, sampling={"interval": "1s"}, deployment={"root": str(root)},
                       rtf={"logs": [str(log)], "interval": "1s"})
    db = tmp_path / "ishowd.db"
    writer = Writer(root)
    daemon = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for((tmp_path / "ishowd.sock").exists, what="the daemon's control socket")
        for _ in range(3):
            size = log.stat().st_size
            wait_for(lambda: log.stat().st_size > size + 300_000, what="more lines")
            proc = run(entry_point("ishowctl"), "--config", str(cfg), "jobs", "run", "rotate-logs", "--json")
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert json.loads(proc.stdout)["result"]["files"]["logs/backend.log"]["how"] == "collapse"
        written = writer.stop()

        def all_read():
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                return conn.execute("SELECT count(*) FROM rtf_records").fetchone()[0] >= written
        wait_for(all_read, timeout=60, what="the daemon to read every line")
    finally:
        if writer.proc.poll() is None:
            writer.stop()
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "Traceback" not in err
    check_exactly_once(root, written, db)


def test_the_daemon_finishes_a_rotation_cut_short_before_it_reads_the_log(tmp_path):
    root, cfg = deployment(tmp_path)
    cfg_file = tmp_path / "ishowd.toml"
    cfg_file.write_text(f'[storage]\npath = "{tmp_path / "ishowd.db"}"\n[deployment]\nroot = "{root}"\n'
                        f'[exporter]\nlisten = ""\n'
                        f'[rtf]\nlogs = ["{root / "logs" / "backend.log"}"]\nbatch_bytes = 131072\n')
    writer = Writer(root)
    wait_for(lambda: (root / "logs" / "backend.log").exists()
             and (root / "logs" / "backend.log").stat().st_size > 400_000, what="some lines")
    written = writer.stop()
    live = root / "logs" / "backend.log"
    archive = archive_name(str(root / "logs" / "archive"), str(live), time.time())
    crash = subprocess.run([sys.executable, "-c", CRASHER, str(cfg_file), "2", str(live), archive],
                           capture_output=True, text=True, timeout=120)   # cut, not yet blanked
    assert crash.returncode == -signal.SIGKILL, crash.stderr
    once = run(entry_point("ishowd"), "run", "--once", "--config", str(cfg_file))
    assert once.returncode == 0, once.stderr
    assert "an interrupted rotation blanked the archived lines and finished" in once.stderr
    check_exactly_once(root, written, tmp_path / "ishowd.db")
