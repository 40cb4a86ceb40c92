"""Every file event, exactly once: the installed daemon against the stand-in backend's real log file.

Each scenario runs with the daemon stopped in between (``ishowd run --once``
before and after) and with the daemon running, and asserts the exact set
of records. Lines that no longer exist anywhere when ishowd looks (written
and then truncated away while it was down) cannot be read; every scenario
writes only lines that still exist somewhere ishowd can see.
"""
from __future__ import annotations

import os
import random

import psutil


def _alive(proc: psutil.Process) -> bool:
    """Running and not a zombie; a process reaped between two questions is not alive."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
import pytest

from backend_harness import Harness, stored, truth
from standin_backend import StandinBackend, get, post_json


@pytest.fixture
def env(tmp_path):
    b = StandinBackend(tmp_path / "logs" / "backend.log")
    (tmp_path / "logs").mkdir()
    b.start()
    h = Harness(tmp_path, backend_url=b.url)
    yield h, b
    h.close()
    b.stop()


def settle(h: Harness, b: StandinBackend, running: bool) -> None:
    """Bring the store up to date: one ``--once`` run, or wait for the running daemon."""
    if running:
        assert h.wait_count(len(b.emitted)) == len(b.emitted)
    else:
        h.once()


def check(h: Harness, b: StandinBackend) -> None:
    assert stored(h) == truth(b.emitted)
    assert h.counter("ingest", "duplicates") == 0   # exactly once by positions, not by the uniqueness guard


def write_some(b: StandinBackend, n: int, via_http: bool = False) -> None:
    for i in range(n):
        if via_http:
            status, _ = post_json(b.url + "/api/tts", {"text": f"请求 {i} voice_id=evil elapsed_ms=1"})
            assert status == 200
        elif i % 4 == 3:
            b.chat()
        else:
            b.synth(f"text {i}\nwith a newline")


@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_appends_and_partial_last_line(env, running):
    h, b = env
    if running:
        h.start()
    write_some(b, 5, via_http=True)
    write_some(b, 5)
    settle(h, b, running)
    check(h, b)
    # a last line still being written: half now, the rest later
    line = b.api_bytes("half written")
    cut = line.index(b"text_preview") + 30      # inside the synthesis line
    with b.lock:                     # nothing else is written meanwhile (the backend writes whole lines)
        os.write(b.fd, line[:cut])
        if running:
            assert not h.wait_for(lambda: h.count() == len(b.emitted), timeout=2.5)
        else:
            h.once()
        assert h.count() == len(b.emitted) - 1
        os.write(b.fd, line[cut:])
    settle(h, b, running)
    check(h, b)
    h.stop()


@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_truncation_at_every_backend_start(env, running):
    h, b = env
    if running:
        h.start()
    write_some(b, 8)
    settle(h, b, running)
    for _ in range(3):
        b.restart()                 # ": > logs/backend.log", boot lines, then requests
        write_some(b, 3, via_http=True)
        settle(h, b, running)
    check(h, b)
    firsts = [r[0] for r in h.records() if r[5]]
    # the first request after the first start and after each of the three restarts
    assert firsts == [b.emitted[i].ts_us for i in (0, 8, 11, 14)]
    assert h.counter("starts") == 4
    h.stop()


def test_truncated_while_down_then_regrew_past_the_old_position(env):
    h, b = env
    write_some(b, 4)
    h.once()
    old_size = os.path.getsize(b.log_path)
    b.restart()
    write_some(b, 2)
    assert os.path.getsize(b.log_path) < old_size
    h.once()                         # shorter than the position: truncated
    check(h, b)
    old_size = os.path.getsize(b.log_path)
    b.restart()
    while os.path.getsize(b.log_path) <= old_size + 100:
        write_some(b, 1)             # longer than before: only the first bytes tell
    h.once()
    check(h, b)


@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_copy_then_truncate_rotation(env, running):
    h, b = env
    write_some(b, 6)
    h.once()
    write_some(b, 5)                 # written after the last read: only the copy will hold them
    archive = os.path.join(os.path.dirname(b.log_path), "archive", "202609", "backend_20260930.log")
    b.copy_truncate(archive)
    write_some(b, 4)
    if running:
        h.start()
    settle(h, b, running)
    check(h, b)
    assert h.counter("ingest", "copies") == 1
    # again with the daemon up the whole time
    if not running:
        h.start()
    write_some(b, 3)
    b.copy_truncate(archive + ".2")
    write_some(b, 3)
    assert h.wait_count(len(b.emitted)) == len(b.emitted)
    check(h, b)
    h.stop()


@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_rename_rotation_backend_keeps_writing_the_old_file(env, running):
    h, b = env
    if running:
        h.start()
    write_some(b, 5)
    settle(h, b, running)
    rotated = b.log_path + ".1"
    b.rename_rotate(rotated)         # the backend's fd follows the renamed file
    write_some(b, 4)
    if not running:
        h.once()                     # the path is gone: the renamed file is followed
    # an operator creates the new file while the backend still writes into the old one
    open(b.log_path, "wb").close()
    write_some(b, 3)
    settle(h, b, running)
    check(h, b)
    b.restart()                      # now the backend writes the new file
    write_some(b, 4, via_http=True)
    settle(h, b, running)
    check(h, b)
    assert h.counter("ingest", "renames") == 1
    if running:                      # the old file stops growing and is let go
        assert h.wait_for(lambda: not h.query("SELECT 1 FROM log_positions WHERE role = 'retired'"), timeout=30)
    h.stop()


@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_deleted_and_recreated(env, running):
    h, b = env
    if running:
        h.start()
    write_some(b, 5)
    settle(h, b, running)
    inode = os.stat(b.log_path).st_ino
    for _ in range(3):
        b.delete_and_recreate()      # a new file, very often with the same inode number
        b.write(b.boot_lines())
        write_some(b, 2)
        settle(h, b, running)
        check(h, b)
    reused = os.stat(b.log_path).st_ino == inode
    print("inode number reused:", reused)
    h.stop()


@pytest.mark.parametrize("workers", [0, 2], ids=["serial", "parallel"])
def test_kill_9_at_many_points(tmp_path, workers):
    """Kill the daemon while it catches up on a long log, again and again: every record once.

    ``parallel``: worker processes scan the backlog and the daemon commits in order.
    """
    (tmp_path / "logs").mkdir()
    b = StandinBackend(tmp_path / "logs" / "backend.log")
    b.start(http=False)
    h = Harness(tmp_path, batch_bytes=1 << 17,
                rtf_extra=f"catchup_workers = {workers}\ncatchup_from = {1 << 17}")
    rnd = random.Random(4)
    try:
        for i in range(3000):
            b.write(b.api_bytes(f"backlog {i} " + "字" * rnd.randint(0, 150)) if i % 5 else b.chat_bytes())
        mid = 0
        for kill in range(15):
            before = h.count()
            h.start()
            if kill % 3 == 0:
                pass                                 # at once: during start-up or the first batch
            elif kill % 3 == 1:                      # right after a batch was committed
                h.wait_for(lambda: h.count() > before, timeout=30, poll=0.002)
            else:                                    # somewhere further in
                target = min(len(b.emitted), before + rnd.randint(100, 1500))
                h.wait_for(lambda: h.count() >= target, timeout=30, poll=0.002)
            children = psutil.Process(h.proc.pid).children(recursive=True)
            h.kill9()
            psutil.wait_procs(children, timeout=30)          # catch-up workers do not outlive the daemon
            assert not [c for c in children if _alive(c)]
            after = h.count()
            mid += before < after < len(b.emitted)
            print(f"kill {kill}: {before} -> {after} of {len(b.emitted)}")
            for i in range(rnd.randint(1500, 2500)):  # more backlog for the next round
                b.write(b.api_bytes(f"more {kill} {i} " + "é" * rnd.randint(0, 130)))
        assert mid >= 5, "too few kills landed in the middle of ingesting"
        h.once()
        assert stored(h) == truth(b.emitted)
        assert h.counter("ingest", "duplicates") == 0
        pos = h.query("SELECT offset FROM log_positions WHERE role = 'current'")
        assert pos[0][0] == os.path.getsize(b.log_path)
    finally:
        h.close()
        b.stop()


@pytest.mark.parametrize("workers", [0, 2], ids=["serial", "parallel"])
def test_first_request_after_each_start_across_batches(tmp_path, workers):
    """The request after a backend start is flagged, wherever the start falls among the batches
    (and among batches scanned by workers and committed together)."""
    (tmp_path / "logs").mkdir()
    b = StandinBackend(tmp_path / "logs" / "backend.log")
    b.start(http=False)
    h = Harness(tmp_path, batch_bytes=1 << 17,
                rtf_extra=f"catchup_workers = {workers}\ncatchup_from = {1 << 17}")
    rnd = random.Random(7)
    firsts, pending = set(), True          # the stand-in logs a start as it starts
    try:
        for i in range(4000):
            if rnd.random() < 0.08:
                for _ in range(rnd.choice([1, 1, 2])):      # now and then two starts in a row
                    b.write(b.boot_lines())
                pending = True
            b.write(b.api_bytes(f"req {i} " + "字" * rnd.randint(0, 60)) if i % 4 else b.chat_bytes())
            if pending:
                firsts.add(b.emitted[-1].ts_us)
                pending = False
        h.once()
        assert stored(h) == truth(b.emitted)
        assert {ts for ts, *_rest, first in h.records() if first} == firsts
        assert len(firsts) > 30
    finally:
        h.close()
        b.stop()


def test_counters_metrics_and_health(env):
    h, b = env
    assert get(b.url + "/api/health")[0] == 200
    post_json(b.url + "/api/tts", {"text": "x", "voice_id": "nobody"})       # 400
    post_json(b.url + "/api/tts", {"text": "x", "fail": True})               # 502 + WARN
    write_some(b, 2, via_http=True)
    h.once()
    metrics = h.latest()
    assert metrics[("backend_up", "")] == 1.0
    assert metrics[("backend_http_requests_total", '{"status":"4xx"}')] == 1
    assert metrics[("backend_http_requests_total", '{"status":"5xx"}')] == 1
    assert metrics[("backend_log_errors_total", '{"level":"warn"}')] == 1
    # the onnxruntime device-discovery warning is ignored; the cudnn "Plan failed" warning is not
    assert metrics[("backend_log_errors_total", '{"level":"other"}')] == 1
    assert metrics[("backend_starts_total", "")] == 1
    assert any(n == "tts_rtf" for n, _ in metrics)
    b.stop()
    h.once()
    assert h.values("backend_up")[-1] == 0.0
    r = h.ctl("status", "--json")
    assert r.returncode == 0, r.stderr
    import json
    data = json.loads(r.stdout)
    assert set(data["rtf"]) >= {"count", "mean", "p95"}
