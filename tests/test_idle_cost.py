"""What the idle daemon costs between its runs, seen from outside as ``bench/idle_cost.py`` sees it:
the context switches of all its threads (every one a wake-up), read from ``/proc``."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from conftest import entry_point, write_config
from test_daemon import ro, ticks, wait_for


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


class EveryFifth:
    """A calendar of a slot every 0.2 s, for a test: ``CrontabTrigger`` asks only ``next_after``."""
    text = "every 0.2 s"

    def next_after(self, t: float, tz) -> float:
        return (int(t / 0.2) + 1) * 0.2


def test_a_clock_step_while_a_job_runs_does_not_stretch_the_sleep(monkeypatch):
    """The jobs' scheduler never wakes to look at the clock, so a step between its look and the
    sleep it reckons must be seen there: a day back taken during a job made it sleep a day."""
    import threading

    from apscheduler.executors.debug import DebugExecutor

    from ishowd.schedule import CrontabTrigger, SteadyScheduler
    from test_daemon import stepped_wall

    offset, wall = stepped_wall(monkeypatch)
    sched = SteadyScheduler(timezone="UTC", wall=wall, executors={"default": DebugExecutor()},
                            job_defaults={"coalesce": True, "max_instances": 1})
    trigger = CrontabTrigger(EveryFifth(), timezone_utc())
    fired: list[float] = []

    def job():
        fired.append(time.monotonic())
        if len(fired) == 2:
            offset[0] -= 86400

    sched.add_job(job, trigger, id="job", misfire_grace_time=1)
    thread = threading.Thread(target=sched.start, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(fired) >= 5, timeout=10, what="runs after the step back (it slept a day)")
    finally:
        sched.request_stop()
        thread.join(10)
    assert sched.steps == 1


def timezone_utc():
    from datetime import timezone
    return timezone.utc


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


def test_ingestion_says_when_its_run_is_short(tmp_path):
    """``quick()``: what may run in the main loop's thread. A log unchanged or grown by a few lines
    is; one never read, rotated, truncated, grown by more than QUICK_BYTES, or a rotation under way
    is not (the run goes to the task pool)."""
    import threading

    from ishowd import catalog
    from ishowd.backend import ingest
    from ishowd.store.writer import Store
    from standin_backend import StandinBackend

    log = tmp_path / "backend.log"
    cfg = catalog.loads_config(f'[storage]\npath = "{tmp_path / "s.db"}"\n[rtf]\nlogs = ["{log}"]\n', "test")
    backend = StandinBackend(log).start(http=False)
    store = Store(tmp_path / "s.db")
    try:
        backend.synth()
        ingestor = ingest.Ingestor(cfg, store)
        assert not ingestor.quick()                 # never read: a backlog, maybe
        ingestor.run()
        assert ingestor.quick()                     # nothing new
        backend.synth()
        assert ingestor.quick()                     # a request's lines
        ingestor.run()
        with open(log, "ab") as f:
            f.write(b"x" * (ingest.QUICK_BYTES + 1) + b"\n")
        assert not ingestor.quick()                 # a backlog
        ingestor.run()
        assert ingestor.quick()
        os.truncate(log, 0)
        assert not ingestor.quick()                 # truncated
        ingestor.run()
        taken = threading.Event()
        done = threading.Event()

        def rotation():
            with ingest.LOG_LOCK:
                taken.set()
                done.wait(10)
        holder = threading.Thread(target=rotation)
        holder.start()
        taken.wait(10)
        try:
            assert not ingestor.quick()             # the rotation job holds the log
        finally:
            done.set()
            holder.join(10)
        assert ingestor.quick()
        os.rename(log, tmp_path / "backend.log.1")
        backend.synth()
        assert not ingestor.quick()                 # another file at the path
        ingestor.run()
        assert not ingestor.quick()                 # the renamed file is followed a while yet
    finally:
        backend.stop()
        store.close()


def test_ingestion_shares_the_ticks_wake_up(tmp_path):
    """Log ingestion due with the tick runs in the same wake-up, in the main loop's thread: reading a
    log every second beside a tick every second costs no context switch more than the tick alone
    (a hand-off to a pool thread costs two or more each time)."""
    from standin_backend import StandinBackend

    log = tmp_path / "backend.log"
    backend = StandinBackend(log).start(http=False)
    backend.synth()
    cfg = write_config(tmp_path, sampling={"interval": "1s"}, rtf={"interval": "1s", "logs": [str(log)]},
                       backend={"health_interval": "1h"})
    err = tmp_path / "stderr"
    proc = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=open(err, "w"))
    db = tmp_path / "ishowd.db"

    def records() -> int:
        conn = ro(db)       # closed each time: a connection left open pins an old snapshot (Python 3.10)
        try:
            return conn.execute("SELECT count(*) FROM rtf_records").fetchone()[0]
        finally:
            conn.close()
    try:
        wait_for(lambda: len(ticks(db)) >= 3 and records() == 1, what="three ticks and the first record")
        first, before = len(ticks(db)), switches(proc.pid)
        wait_for(lambda: len(ticks(db)) >= first + 5, what="five more ticks")
        n, after = len(ticks(db)), switches(proc.pid)
        backend.synth()                              # still read, in the tick's wake-up
        wait_for(lambda: records() == 2, what="the new request read")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        backend.stop()
    per_tick = (after - before) / (n - first)
    assert per_tick <= 3, f"{per_tick:.1f} context switches per tick with ingestion every second"
    assert "Traceback" not in err.read_text()


def test_the_health_probe_keeps_one_thread_and_one_opener(tmp_path):
    """Each probe after the first runs in the same thread, woken by the tick that finds it due,
    through the same urllib opener: starting a thread per probe cost several context switches."""
    import threading

    from ishowd import catalog
    from ishowd.collectors import TickContext
    from ishowd.collectors.backend import BACKEND_UP, Backend
    from standin_backend import StandinBackend

    backend = StandinBackend(tmp_path / "backend.log").start()
    cfg = catalog.loads_config(f'[backend]\nurl = "{backend.url}"\nhealth_interval = "1s"\n'
                               f'[deployment]\nroot = "{tmp_path}"\n', "test")
    c = Backend(cfg)
    c.setup()
    started: list[str] = []
    real_start = threading.Thread.start

    def counting_start(thread):
        started.append(thread.name)
        real_start(thread)
    try:
        threading.Thread.start = counting_start
        ctx = TickContext(now=time.time(), config=cfg)
        assert [s.value for s in c.collect(ctx) if s.metric is BACKEND_UP] == [1.0]   # the first, in the tick
        openers = set()
        for n in range(4):
            answered = c._answer
            c._probe_started -= 10                   # the next probe is due
            list(c.collect(ctx))
            wait_for(lambda: c._answer is not answered and not c._probing, timeout=10, what=f"probe {n}")
            openers.add(id(c._opener))
        assert sum(1 for r in backend.requests if r.path == "/api/health") == 5
    finally:
        threading.Thread.start = real_start
        c.close()
        backend.stop()
    assert [n for n in started if n.startswith("backend-health")] == ["backend-health"], started
    assert len(openers) == 1


def test_ingestion_holds_no_batch_sized_buffer_between_runs(tmp_path):
    """A backlog is read in batches of up to ``[rtf] batch_bytes`` (4 MiB by default), but what the
    ingestor keeps between runs is sized for a live log's few lines, not for a batch."""
    import gc
    import tracemalloc

    from ishowd import catalog
    from ishowd.backend import ingest
    from ishowd.store.writer import Store
    from standin_backend import StandinBackend

    log = tmp_path / "backend.log"
    cfg = catalog.loads_config(f'[storage]\npath = "{tmp_path / "s.db"}"\n[rtf]\nlogs = ["{log}"]\n'
                               'catchup_workers = 0\n', "test")
    backend = StandinBackend(log).start(http=False)
    store = Store(tmp_path / "s.db")
    tracemalloc.start()
    try:
        ingestor = ingest.Ingestor(cfg, store)
        requests = 0
        while log.stat().st_size < 12 * ingest.QUICK_BYTES:        # a backlog well past the quick size
            backend.synth(f"request {requests}")
            requests += 1
        ingestor.run()
        backend.synth()
        ingestor.run()
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
        with store.transaction() as conn:
            stored = conn.execute("SELECT count(*) FROM rtf_records").fetchone()[0]
    finally:
        tracemalloc.stop()
        backend.stop()
        store.close()
    assert stored == requests + 1
    assert held < cfg.rtf.batch_bytes // 2, f"{held} bytes held after the backlog"


def test_the_running_daemon_imports_only_what_it_uses(tmp_path):
    """Memory is what modules cost: asyncio (which APScheduler 3 imports for one function), its
    process pool's multiprocessing, importlib.metadata (for its version and plugin names), click
    (ishowctl's) and the idna codec (an ASCII address looked up as str) are 4.7 MB of the daemon's,
    while it probes a backend and serves a scrape. Later code importing those modules gets the real
    ones, and APScheduler's coroutine test answers as asyncio's does."""
    import sys

    import urllib.request

    from standin_backend import StandinBackend
    from test_exporter import free_port

    backend = StandinBackend(tmp_path / "backend.log").start()
    port = free_port()
    cfg = write_config(tmp_path, sampling={"interval": "1h"}, backend={"url": f"http://localhost:{backend.port}"})
    cfg.write_text(cfg.read_text().replace('listen = ""', f'listen = "127.0.0.1:{port}"'))
    err = tmp_path / "stderr"
    proc = subprocess.Popen([sys.executable, "-X", "importtime", entry_point("ishowd"), "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=open(err, "w"))
    try:
        def scrape() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                    return resp.read().decode()
            except OSError:
                return ""
        wait_for(lambda: "\nbackend_up " in scrape(), what="the first tick on /metrics")
        assert "\nbackend_up 1.0\n" in scrape()        # it probed the backend, by name
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, err.read_text()
    finally:
        backend.stop()
        if proc.poll() is None:
            proc.kill()
    imported = {line.split("|")[-1].strip() for line in err.read_text().splitlines() if line.startswith("import time:")}
    assert {"apscheduler.util", "prometheus_client", "sqlite3", "urllib.request"} <= imported  # the parse sees
    assert not imported & {"asyncio", "click", "torch", "numpy", "matplotlib", "sqlalchemy", "multiprocessing",
                           "concurrent.futures.process", "pickle", "importlib.metadata", "zipfile", "encodings.idna"}

    probe = ("import sys, ishowd.schedule, apscheduler.util as u\n"
             "assert 'asyncio' not in sys.modules\n"
             "import asyncio, functools, unittest.mock\n"
             "assert asyncio.iscoroutinefunction is not u.iscoroutinefunction and hasattr(asyncio, 'run')\n"
             "async def co(): pass\n"
             "def plain(): pass\n"
             "for f in (co, plain, functools.partial(co), unittest.mock.AsyncMock(), unittest.mock.Mock(), len):\n"
             "    assert u.iscoroutinefunction(f) == asyncio.iscoroutinefunction(f), f\n"
             "import apscheduler.executors.pool as pool, multiprocessing, concurrent.futures.process as real\n"
             "assert pool.multiprocessing.get_context is multiprocessing.get_context\n"
             "assert real.BrokenProcessPool is not pool.BrokenProcessPool and hasattr(real, 'ProcessPoolExecutor')\n"
             "assert issubclass(pool.BrokenProcessPool, real.BrokenProcessPool.__mro__[1])\n"
             "assert 'importlib.metadata' not in sys.modules\n"
             "import apscheduler, importlib.metadata as md\n"
             "from apscheduler import version\n"
             "assert version == apscheduler.__version__ == md.version('APScheduler').split('-')[0]\n"
             "from apscheduler.schedulers.background import BackgroundScheduler\n"
             "from apscheduler.triggers.cron import CronTrigger\n"
             "s = BackgroundScheduler()\n"
             "assert isinstance(s.add_job(print, 'cron', hour=3).trigger, CronTrigger)\n"
             "assert 'threadpool' in s._executor_plugins and 'memory' in s._jobstore_plugins\n"
             "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
