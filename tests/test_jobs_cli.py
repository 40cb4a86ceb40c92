"""`ishowctl jobs` for real: with no daemon, through the daemon's control socket, and who may use it."""
from __future__ import annotations

import json
import time
import os
import signal
import subprocess
import sys

import pytest

from conftest import entry_point, run, write_config
from test_daemon import wait_for

FILES = ("third_party/F5-TTS/src/f5_tts/api.py", "third_party/F5-TTS/src/f5_tts/infer/utils_infer.py",
         "crates/tts-engine/src/lib.rs", "config/ishowtts.toml")


@pytest.fixture
def deployment(tmp_path):
    root = tmp_path / "ishowtts"
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"# {rel}\n")
    cfg = write_config(tmp_path, deployment={"root": str(root)}, sampling={"interval": "1s"})
    return cfg, root


def ishowctl(cfg, *args, **kw):
    return run(entry_point("ishowctl"), "--config", str(cfg), *args, **kw)


def test_jobs_run_with_no_daemon_runs_here_and_records_the_run(deployment):
    cfg, root = deployment
    proc = ishowctl(cfg, "jobs", "run", "backup", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "no daemon is running: running it in this process" in proc.stderr
    record = json.loads(proc.stdout)
    assert set(record) == {"job", "started", "finished", "status", "detail", "result"}
    assert (record["job"], record["status"]) == ("backup", "ok")
    history = json.loads(ishowctl(cfg, "jobs", "history", "--json").stdout)
    assert [(h["job"], h["status"]) for h in history] == [("backup", "ok")]
    assert set(history[0]) == {"job", "started", "finished", "status", "detail"}
    (listed,) = [j for j in json.loads(ishowctl(cfg, "jobs", "list", "--json").stdout) if j["job"] == "backup"]
    assert set(listed) == {"job", "schedule", "enabled", "next", "last"}
    assert listed["last"]["status"] == "ok" and listed["schedule"] == "30 3 1 * *"
    assert "Traceback" not in proc.stderr


def test_jobs_run_goes_through_the_running_daemon(deployment, tmp_path):
    cfg, root = deployment
    daemon = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sock = tmp_path / "ishowd.sock"
    try:
        wait_for(sock.exists, what="the control socket")
        assert oct(sock.stat().st_mode & 0o777) == "0o600"
        proc = ishowctl(cfg, "jobs", "run", "backup")
        assert proc.returncode == 0, proc.stderr
        assert "running it in this process" not in proc.stderr and proc.stdout.startswith("backup: ok in ")
        again = ishowctl(cfg, "jobs", "run", "backup")     # the files did not change: nothing written
        assert again.returncode == 0 and "unchanged since" in again.stdout
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert err.count("job backup: started (operator)") == 2
    assert not sock.exists()   # removed at stop


def test_the_control_socket_serves_only_root_and_the_daemons_user(deployment, tmp_path):
    if os.getuid() != 0:
        pytest.skip("needs root to act as another user")
    import shutil
    import tempfile
    from pathlib import Path
    _, root = deployment
    state = Path(tempfile.mkdtemp(prefix="ishowd-sock-"))   # a directory another user can reach
    os.chmod(state, 0o755)
    cfg = write_config(state, deployment={"root": str(root)}, sampling={"interval": "1s"})
    daemon = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sock = state / "ishowd.sock"
    try:
        wait_for(sock.exists, what="the control socket")
        os.chmod(sock, 0o666)       # even when the file's mode lets anyone connect...
        client = f"""
import json, os, socket, sys
os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX); s.connect({str(sock)!r})
s.sendall(b'{{"op": "run", "job": "backup"}}\\n')
print(s.makefile().readline())
"""
        proc = subprocess.run([sys.executable, "-c", client], capture_output=True, text=True, timeout=30)
        assert "refused: only root and the daemon's user" in proc.stdout, proc.stdout + proc.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
        shutil.rmtree(state, ignore_errors=True)
    assert "refused a client running as uid 65534" in err
    assert "job backup: started" not in err       # ...nothing ran


def test_an_unknown_job_is_a_usage_error_naming_the_jobs(deployment):
    cfg, _ = deployment
    proc = ishowctl(cfg, "jobs", "run", "bakup")
    assert proc.returncode == 2 and "no job 'bakup'" in proc.stderr and "backup" in proc.stderr


def test_ticks_stay_on_time_while_a_job_runs(deployment, tmp_path):
    """A job runs in its own thread pool: a run taking seconds (here `outdated`, its interpreter a
    stand-in that takes its time) delays no sampling tick."""
    slow = tmp_path / "slow-python"
    slow.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(4)\nprint('[]')\n")
    slow.chmod(0o755)
    _, root = deployment
    cfg = write_config(tmp_path, deployment={"root": str(root), "python": str(slow)}, sampling={"interval": "1s"})
    db = tmp_path / "ishowd.db"
    daemon = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for((tmp_path / "ishowd.sock").exists, what="the control socket")
        t0 = time.time()
        proc = ishowctl(cfg, "jobs", "run", "outdated", "--json", timeout=120)
        t1 = time.time()
        record = json.loads(proc.stdout)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=30)
    assert t1 - t0 >= 4, "the stand-in interpreter did not hold the job up"
    import sqlite3
    with sqlite3.connect(db) as conn:
        stamps = [ts for (ts,) in conn.execute("SELECT ts FROM head WHERE ts BETWEEN ? AND ? ORDER BY id",
                                               (int(t0), int(t1)))]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert record["job"] == "outdated" and len(stamps) >= int(t1 - t0) - 1 and max(gaps) <= 2, (stamps, record)


def test_a_run_missed_while_the_daemon_was_down_runs_once_at_start(deployment, tmp_path):
    cfg, root = deployment
    first = ishowctl(cfg, "jobs", "run", "backup")        # a run long ago: the store knows the job ran
    assert first.returncode == 0, first.stderr
    import sqlite3
    long_ago = int((time.time() - 100 * 86400) * 1e6)      # three monthly slots have passed since
    with sqlite3.connect(tmp_path / "ishowd.db") as conn:
        conn.execute("UPDATE job_runs SET started = ?, finished = ?, slot = ?", (long_ago, long_ago, long_ago))
    daemon = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def catch_ups():
        with sqlite3.connect(f"file:{tmp_path / 'ishowd.db'}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT trigger, status FROM job_runs WHERE trigger = 'catch-up' AND status != 'running'"
                                ).fetchall()
    try:
        got = wait_for(catch_ups, what="the missed run")
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
    assert got == catch_ups() == [("catch-up", "ok")]      # once, not once per missed month
    assert "was missed while ishowd was down; running it now" in err
