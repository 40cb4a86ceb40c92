"""What the idle daemon costs between its runs, seen from outside as ``bench/idle_cost.py`` sees it:
the context switches of all its threads (every one a wake-up), read from ``/proc``."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from conftest import entry_point, write_config
from test_daemon import ticks, wait_for


def switches(pid: int) -> int:
    """Voluntary and involuntary context switches of every live thread of ``pid``."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                total += sum(int(line.split()[1]) for line in f if "ctxt_switches:" in line)
        except FileNotFoundError:      # a thread that ended meanwhile
            continue
    return total


def quiet(pid: int, spell: float = 1.5):
    """A predicate: true once ``pid`` has not been switched to for ``spell`` seconds."""
    last = [switches(pid), time.monotonic()]

    def check() -> bool:
        now, n = time.monotonic(), switches(pid)
        if n != last[0]:
            last[:] = [n, now]
            return False
        return now - last[1] >= spell
    return check


def start(tmp_path, interval: str):
    # every run an hour apart but the sampling's: what is left between two ticks is the scheduler's own
    cfg = write_config(tmp_path, sampling={"interval": interval}, rtf={"interval": "1h"},
                       backend={"health_interval": "1h"})
    err = tmp_path / "stderr"
    proc = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=open(err, "w"))
    return proc, err, tmp_path / "ishowd.db"


def test_the_idle_daemon_sleeps_between_its_runs_and_wakes_for_signals(tmp_path):
    """It used to wake every second to look for a clock step and a signal noted by its handler;
    between two runs it sleeps now, and a signal wakes it at once, though its next tick is an hour off."""
    proc, err, db = start(tmp_path, "1h")
    try:
        wait_for(lambda: ticks(db) and "sampling every" in err.read_text(), what="the first tick")
        wait_for(quiet(proc.pid), timeout=20, what="the daemon to go quiet after its start")
        before = switches(proc.pid)
        window = time.monotonic() + 3.0
        while time.monotonic() < window:     # a span of time is what is measured here, not a race
            time.sleep(0.5)
            assert proc.poll() is None
        assert switches(proc.pid) - before <= 1, "the idle daemon woke up between its runs"
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "nothing changed" in err.read_text(), timeout=5, what="the reload on SIGHUP")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "finishing the work in flight" in err.read_text()


def test_a_tick_costs_the_daemon_few_wake_ups(tmp_path):
    """The tick runs in the scheduler's thread: a hand-off to a pool thread and back cost four context
    switches more per tick (and the pool's bookkeeping), on top of the wake-up itself."""
    proc, err, db = start(tmp_path, "1s")
    try:
        wait_for(lambda: len(ticks(db)) >= 3, what="three ticks")
        first, before = len(ticks(db)), switches(proc.pid)
        wait_for(lambda: len(ticks(db)) >= first + 5, what="five more ticks")
        n, after = len(ticks(db)), switches(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    per_tick = (after - before) / (n - first)
    assert per_tick <= 3, f"{per_tick:.1f} context switches per tick"


def test_a_clock_step_while_a_job_runs_does_not_stretch_the_sleep(monkeypatch):
    """The scheduler no longer wakes every second to look at the clock, so a step between its look
    and the sleep it reckons must be seen there: a day back taken during a job (run in the
    scheduler's thread, as the tick is) made it sleep a day."""
    import threading

    from apscheduler.executors.debug import DebugExecutor

    from ishowd.schedule import MonotonicInterval, SteadyScheduler
    from test_daemon import stepped_wall

    offset, wall = stepped_wall(monkeypatch)
    sched = SteadyScheduler(timezone="UTC", wall=wall, executors={"default": DebugExecutor()},
                            job_defaults={"coalesce": True, "max_instances": 1})
    trigger = MonotonicInterval(0.2, first_delay=0)
    fired: list[float] = []

    def job():
        trigger.fired(trigger.slot_now())
        fired.append(time.monotonic())
        if len(fired) == 2:
            offset[0] -= 86400

    sched.add_job(job, trigger, id="sample", misfire_grace_time=1)
    thread = threading.Thread(target=sched.start, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(fired) >= 5, timeout=10, what="runs after the step back (it slept a day)")
    finally:
        sched.request_stop()
        thread.join(10)
    assert sched.steps == 1


def test_a_log_nobody_writes_costs_no_transaction(tmp_path):
    """Log ingestion looked every 5 s at a log that had not changed, or did not exist (the default
    log on a host without the deployment), in two write transactions each time: now a stat."""
    import sqlite3

    from ishowd import catalog
    from ishowd.backend.ingest import Ingestor
    from ishowd.store.writer import Store
    from standin_backend import StandinBackend

    missing, written = tmp_path / "missing.log", tmp_path / "backend.log"
    cfg = catalog.loads_config(f'[storage]\npath = "{tmp_path / "s.db"}"\n[rtf]\nlogs = ["{missing}", "{written}"]\n',
                               "test")
    backend = StandinBackend(written).start(http=False)
    backend.synth()
    store = Store(tmp_path / "s.db")
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    ingestor = Ingestor(cfg, store)

    def records() -> int:
        with sqlite3.connect(tmp_path / "s.db") as conn:
            return conn.execute("SELECT count(*) FROM rtf_records").fetchone()[0]

    try:
        ingestor.run()
        assert records() == 1 and statements
        statements.clear()
        for _ in range(3):
            ingestor.run()
        assert statements == [], "a run over logs that had not changed touched the store"
        backend.synth()                     # appended: read at the next run
        ingestor.run()
        assert records() == 2
        missing.write_bytes(backend.api_bytes())   # the missing log appears: read from its start
        ingestor.run()
        assert records() == 3
    finally:
        backend.stop()
        store.close()


def test_swap_is_read_from_meminfo_alone(tmp_path):
    """psutil's swap_memory() parsed all of /proc/vmstat each tick for counters dropped here: swap
    comes from meminfo now, as psutil computes it (SwapTotal - SwapFree)."""
    from ishowd import catalog
    from ishowd.collectors import TickContext
    from ishowd.collectors.host import HostCollector
    from ishowd.specs.host import SWAP_USED

    root = tmp_path / "proc"
    root.mkdir()
    (root / "stat").write_text(open("/proc/stat").read())
    (root / "meminfo").write_text("MemTotal:       16000000 kB\nMemFree:         1000000 kB\n"
                                  "MemAvailable:    8000000 kB\nBuffers:          100000 kB\n"
                                  "Cached:          3000000 kB\nShmem:            200000 kB\n"
                                  "Active:          5000000 kB\nInactive:        2000000 kB\n"
                                  "SwapTotal:       4000000 kB\n"
                                  "SwapFree:        2500000 kB\n")
    cfg = catalog.loads_config(f'[storage]\npath = "{tmp_path / "s.db"}"\n[host]\nprocfs_root = "{root}"\n', "test")
    host = HostCollector(cfg)
    host.setup()
    try:
        got = {s.metric: s.value for s in host.collect(TickContext(now=time.time(), config=cfg))}
    finally:
        host.close()
    assert got[SWAP_USED] == (4000000 - 2500000) * 1024


def test_a_series_rolled_back_is_not_taken_from_the_label_cache(tmp_path):
    """A tick's series ids come from a cache by label items (no JSON per sample); a series made in a
    transaction that was rolled back is forgotten with it, so the next write stores it again."""
    import sqlite3

    from ishowd.metrics import Sample, declare
    from ishowd.store.writer import Store

    metric = declare("test_idle_label_cache_ratio", "ratio", "a test metric", labels=("path",))
    store = Store(tmp_path / "s.db")
    try:
        with pytest.raises(RuntimeError):
            with store.transaction() as conn:
                store.write_in(conn, 1_767_225_600, [Sample(metric, 0.5, {"path": "/"})])
                raise RuntimeError("rolled back")
        store.write(1_767_225_610, [Sample(metric, 0.25, {"path": "/"})])
        store.write(1_767_225_620, [Sample(metric, 0.75, {"path": "/"})])
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("SELECT labels FROM series WHERE name = ?", (metric.name,)).fetchall() == [('{"path":"/"}',)]
        assert conn.execute("SELECT count(*) FROM head").fetchone()[0] == 2
