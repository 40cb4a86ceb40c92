"""ishowd under systemd: the notify protocol, the watchdog, reload on SIGHUP, journald priorities, the unit.

The daemon runs as a real subprocess; systemd's side is a stand-in notify socket (a real
AF_UNIX datagram socket, bound to a path or to an abstract name) that reads each message
with the sender's credentials, as systemd does for ``NotifyAccess=main``. The unit file is
checked with the real ``systemd-analyze`` (``apt-get install systemd``).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import entry_point, write_config
from hw_helpers import FIXTURES
from standin_backend import line_api
from test_daemon import wait_for

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "ishowd.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed "
                                   "(Debian/Ubuntu: apt-get install systemd)")


class NotifySocket:
    """What systemd listens on: one datagram per message, each kept with its sender's pid."""

    def __init__(self, kind: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if kind == "abstract":
            name = f"ishowd-test-{os.getpid()}-{os.urandom(4).hex()}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
            self._dir = None
        else:  # a short directory: a socket path must fit in 108 bytes
            self._dir = tempfile.TemporaryDirectory(prefix="sdnotify-")
            path = os.path.join(self._dir.name, "notify")
            self.sock.bind(path)
            self.address = path
        self.messages: list[tuple[float, int, dict]] = []   # (monotonic time received, sender pid, fields)
        self.received_boottime_ms = 0   # of the last message, on the clock the store stamps its rows with

    def receive(self, timeout: float) -> dict | None:
        """The next message, or None when none came within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            data, ancdata, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(struct.calcsize("3i")))
        except socket.timeout:
            return None
        self.received_boottime_ms = int(time.clock_gettime(time.CLOCK_BOOTTIME) * 1000)
        pid = next(struct.unpack("3i", d)[0] for level, kind, d in ancdata
                   if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS)
        fields = dict(line.split("=", 1) for line in data.decode().split("\n"))
        self.messages.append((time.monotonic(), pid, fields))
        return fields

    def wait(self, predicate, timeout: float = 30.0, what: str = "a message") -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.receive(max(0.01, deadline - time.monotonic()))
            if got is not None and predicate(got):
                return got
        pytest.fail(f"timed out waiting for {what}; got {[m[2] for m in self.messages[-10:]]}")

    def silence(self, key: str, quiet: float, timeout: float = 30.0) -> None:
        """Wait until no message with ``key`` has come for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline:
            got = self.receive(0.1)
            if got is not None and key in got:
                last = time.monotonic()
            elif time.monotonic() - last >= quiet:
                return
        pytest.fail(f"{key} kept coming for {timeout}s")

    def close(self) -> None:
        self.sock.close()
        if self._dir is not None:
            self._dir.cleanup()


@pytest.fixture(params=["path", "abstract"])
def notify(request):
    sock = NotifySocket(request.param)
    yield sock
    sock.close()


def start(cfg: Path, err: Path, **env: str) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if k not in ("ISHOWD_CONFIG", "JOURNAL_STREAM", "NOTIFY_SOCKET")}
    full.update(env)
    return subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=open(err, "wb"), env=full)


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


def query(db: Path, sql: str, args=()) -> list:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:   # not created yet
        return []


def tick_rows(db: Path) -> int:
    """Head rows written by a sampling tick (log ingestion writes its counters there too)."""
    from ishowd.store.codec import unpack_tick
    tick = {sid for (sid,) in query(db, "SELECT id FROM series WHERE name = 'memory_total_bytes'")}
    return sum(1 for (blob,) in query(db, "SELECT data FROM head") if tick & {sid for sid, _ in unpack_tick(blob)})


def metrics_port(err: Path, after: int = 0) -> int:
    found = re.findall(r"serving /metrics on http://127\.0\.0\.1:(\d+)/metrics", err.read_text()[after:])
    return int(found[-1]) if found else 0


# --- the protocol ---------------------------------------------------------------------------


def test_ready_once_after_the_first_tick_then_status_watchdog_and_stopping(tmp_path, notify):
    """With a minute between samples, the first is taken at start: READY=1 comes once it is in the
    store, well before a minute, and /metrics serves it at once."""
    cfg = write_config(tmp_path, sampling={"interval": "60s"})
    cfg.write_text(cfg.read_text().replace('listen = ""', 'listen = "127.0.0.1:0"'))
    db, err = tmp_path / "ishowd.db", tmp_path / "stderr"
    started = time.monotonic()
    proc = start(cfg, err, NOTIFY_SOCKET=notify.address, WATCHDOG_USEC="1000000")
    try:
        ready = notify.wait(lambda m: "READY" in m, what="READY=1")
        written = query(db, "SELECT min(mono) FROM head")
        assert written and written[0][0] is not None, "READY=1 came before the first tick was in the store"
        assert written[0][0] <= notify.received_boottime_ms, "the first tick was written after READY=1"
        assert time.monotonic() - started < 30, "the first sample waited for the interval"
        assert ready["READY"] == "1" and "sampling every 1m" in ready["STATUS"]
        assert "no job run yet" in ready["STATUS"] and "\n" not in ready["STATUS"]
        port = wait_for(lambda: metrics_port(err), what="the exporter's address in the log")
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert re.search(r"^memory_total_bytes \d+", body, re.M), body
        for n in range(3):  # every half second (half of WATCHDOG_USEC), though no tick is due for a minute
            notify.wait(lambda m: m.get("WATCHDOG") == "1", timeout=10, what=f"watchdog ping {n + 1}")
        assert tick_rows(db) == 1
        assert stop(proc) == 0, err.read_text()
        notify.wait(lambda m: m.get("STOPPING") == "1", timeout=5, what="STOPPING=1")
        while notify.receive(0.2) is not None:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
    assert sum("READY" in m for _, _, m in notify.messages) == 1
    assert {pid for _, pid, _ in notify.messages} == {proc.pid}   # the main process, not a child


def test_a_wedged_sampling_loop_stops_the_watchdog_pings(tmp_path):
    """A thermal zone's ``temp`` read is made to block for real: the file, in a copy of a fixture
    tree, becomes a FIFO nobody writes. The tick hangs, the pings stop (systemd would restart
    ishowd), the process stays; once the FIFO is written, the tick ends and the pings come again."""
    sys_root = tmp_path / "sys"
    shutil.copytree(FIXTURES / "x86-plain" / "sys", sys_root, symlinks=True)
    cfg = write_config(tmp_path, sampling={"interval": "1s"}, host={"sysfs_root": str(sys_root)})
    db, err = tmp_path / "ishowd.db", tmp_path / "stderr"
    notify = NotifySocket("path")
    proc = start(cfg, err, NOTIFY_SOCKET=notify.address, WATCHDOG_USEC="1000000")
    try:
        notify.wait(lambda m: "READY" in m, what="READY=1")
        for n in range(3):
            notify.wait(lambda m: "WATCHDOG" in m, timeout=10, what=f"watchdog ping {n + 1}")
        temp = sys_root / "devices" / "virtual" / "thermal" / "thermal_zone0" / "temp"
        value = temp.read_bytes()
        temp.unlink()
        os.mkfifo(temp)
        notify.silence("WATCHDOG", quiet=3.0)
        assert proc.poll() is None
        wedged = tick_rows(db)
        assert "the sampling tick has run for" in err.read_text()
        assert "watchdog's pings are withheld" in err.read_text()
        # the collector is blocked opening the FIFO: a writer lets it through
        writer = os.open(temp, os.O_WRONLY | os.O_NONBLOCK)
        real = tmp_path / "temp.file"
        real.write_bytes(value)
        os.replace(real, temp)
        os.write(writer, value)
        os.close(writer)
        notify.wait(lambda m: "WATCHDOG" in m, timeout=10, what="the pings again")
        wait_for(lambda: tick_rows(db) > wedged, what="the tick after the wedge")
        assert "watchdog pings resumed" in err.read_text()
        assert stop(proc) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()


def test_watchdog_of_another_process_or_none_is_not_ours():
    from ishowd.notify import watchdog_timeout
    env = {"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_timeout(env) == 60.0
    assert env == {}   # taken out: hooks and jobs started later never see them
    assert watchdog_timeout({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_timeout({"WATCHDOG_USEC": "60000000"}) == 60.0
    for bad in ("0", "", "-5", "1e6", "٣٠٠٠٠٠٠"):
        assert watchdog_timeout({"WATCHDOG_USEC": bad}) is None


# --- reload -----------------------------------------------------------------------------------


def config_text(tmp_path: Path, *, interval: str, later: str, listen: str = "", store: str = "ishowd.db") -> str:
    return f'''
[storage]
path = "{tmp_path / store}"
[sampling]
interval = "{interval}"
[exporter]
listen = "{listen}"
[rtf]
logs = ["{tmp_path / "backend.log"}"]
interval = "1s"

[[alerts.rules]]
name = "always"
metric = "memory_total_bytes"
op = ">"
threshold = 0

[[alerts.rules]]
name = "later"
metric = "memory_total_bytes"
op = "{later}"
threshold = 0
'''


def append_requests(log: Path, n: int, first: int) -> None:
    with open(log, "ab") as f:
        for i in range(first, first + n):
            f.write(line_api(1_767_225_600_000_000 + i * 1_000_000, f"request {i}"))


def test_sighup_reloads_carrying_alert_states_and_log_positions_and_refuses_a_bad_config(tmp_path, notify):
    cfg, db, err, log = tmp_path / "ishowd.toml", tmp_path / "ishowd.db", tmp_path / "stderr", tmp_path / "backend.log"
    cfg.write_text(config_text(tmp_path, interval="60s", later="<"))
    append_requests(log, 3, 0)
    proc = start(cfg, err, NOTIFY_SOCKET=notify.address)
    try:
        ready = notify.wait(lambda m: "READY" in m, what="READY=1")
        assert "; 1 alert firing (always); " in ready["STATUS"]   # the first tick judged it
        wait_for(lambda: query(db, "SELECT count(*) FROM rtf_records") == [(3,)], what="the log's three requests")
        assert query(db, "SELECT rule FROM alert_state WHERE state = 'firing'") == [("always",)]
        (fired_at,) = query(db, "SELECT fired_at FROM alert_state WHERE rule = 'always'")[0]
        ticks_before = tick_rows(db)

        # a changed interval, rule and exporter address
        cfg.write_text(config_text(tmp_path, interval="1s", later=">", listen="127.0.0.1:0"))
        logged = len(err.read_text())
        asked = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        proc.send_signal(signal.SIGHUP)
        reloading = notify.wait(lambda m: "RELOADING" in m, what="RELOADING=1")
        assert reloading["RELOADING"] == "1" and 0 <= int(reloading["MONOTONIC_USEC"]) - asked < 30_000_000
        assert "reload refused" not in notify.wait(lambda m: "READY" in m, what="READY=1 after the reload")["STATUS"]
        wait_for(lambda: tick_rows(db) >= ticks_before + 3, timeout=20, what="ticks every second, not every minute")
        wait_for(lambda: query(db, "SELECT rule FROM alert_state WHERE state = 'firing' ORDER BY rule")
                 == [("always",), ("later",)], what="the changed rule firing")
        # the alert that was firing goes on firing from when it fired, and fired once
        assert query(db, "SELECT fired_at FROM alert_state WHERE rule = 'always'") == [(fired_at,)]
        assert query(db, "SELECT count(*) FROM alert_events WHERE rule = 'always'") == [(1,)]
        # log positions carried over: the new lines are read, the old ones not again
        append_requests(log, 2, 3)
        wait_for(lambda: query(db, "SELECT count(*) FROM rtf_records") == [(5,)], what="the two new requests")
        port = wait_for(lambda: metrics_port(err, logged), what="the exporter on its new address")
        served = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert "memory_total_bytes" in served
        assert "[[alerts.rules]]" in err.read_text()[logged:] and "[sampling]" in err.read_text()[logged:]

        # a config that does not load: refused, said with the file and key, the running one stays
        cfg.write_text(config_text(tmp_path, interval="fast", later="<"))
        logged = len(err.read_text())
        proc.send_signal(signal.SIGHUP)
        notify.wait(lambda m: "RELOADING" in m, what="RELOADING=1")
        status = notify.wait(lambda m: "READY" in m, what="READY=1 after the refusal")["STATUS"]
        assert status.startswith("reload refused") and f"{cfg}: [sampling] interval: expected" in status
        said = err.read_text()[logged:]
        assert f"reload refused, the running configuration stays in force: {cfg}: [sampling] interval" in said
        assert "Traceback" not in said
        ticks_now = tick_rows(db)
        wait_for(lambda: tick_rows(db) >= ticks_now + 2, timeout=20, what="ticks going on at 1s")
        assert proc.poll() is None
        assert query(db, "SELECT count(*) FROM alert_state WHERE rule = 'later'") == [(1,)]

        # another store cannot be moved to live: refused too
        cfg.write_text(config_text(tmp_path, interval="1s", later=">", store="other.db"))
        proc.send_signal(signal.SIGHUP)
        status = notify.wait(lambda m: "READY" in m, what="READY=1 after refusing the store path")["STATUS"]
        assert "[storage] path: changed from" in status and "restart ishowd" in status
        assert not (tmp_path / "other.db").exists()

        # fixed: the refusal is gone from STATUS
        cfg.write_text(config_text(tmp_path, interval="1s", later=">"))
        proc.send_signal(signal.SIGHUP)
        status = notify.wait(lambda m: "READY" in m, what="READY=1 after the fix")["STATUS"]
        assert "refused" not in status and status.startswith("sampling every 1s")
        assert stop(proc) == 0, err.read_text()
        notify.wait(lambda m: "STOPPING" in m, timeout=5, what="STOPPING=1")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err.read_text()


def test_a_reload_puts_the_new_job_calendar_in_place_and_keeps_the_runner(tmp_path):
    """The runner outlives a reload: the history, the slots run, the runs in flight stay with it."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from ishowd import catalog
    from ishowd.jobs import scheduling
    from ishowd.jobs.runner import JobRunner, set_up
    from ishowd.store.writer import open_store

    before = catalog.load_config(str(write_config(tmp_path)))
    store = open_store(before)
    try:
        runner = JobRunner(before, store, *set_up(before))
        sched = BackgroundScheduler(timezone="UTC")
        scheduling.add_jobs(sched, runner)
        assert {"job:backup", "job:outdated"} <= {j.id for j in sched.get_jobs()}
        done = runner.run("rotate-logs")   # not on this host: recorded as skipped at once
        after = catalog.load_config(str(write_config(
            tmp_path, extra='[jobs.backup]\nenabled = false\n[jobs.outdated]\nschedule = "30 5 * * 2"\n')))
        scheduling.reschedule(sched, runner, after)
        calendar = {j.id: str(j.trigger) for j in sched.get_jobs()}
        assert "job:backup" not in calendar and calendar["job:outdated"] == "cron '30 5 * * 2'"
        assert runner.last["rotate-logs"] == done and runner.config is after
        assert runner.jobs["outdated"].settings.schedule == "30 5 * * 2" and "backup" not in runner.enabled()
    finally:
        store.close()


# --- journald -----------------------------------------------------------------------------------


def test_under_journald_each_line_carries_its_priority_and_no_timestamp(tmp_path):
    # a deployment here, its log missing: a warning to see the <4> on
    cfg = write_config(tmp_path, rtf={"logs": [str(tmp_path / "absent" / "backend.log")]},
                       deployment={"root": str(tmp_path)})
    err = tmp_path / "stderr"
    err.touch()
    st = err.stat()
    env = {k: v for k, v in os.environ.items() if k != "ISHOWD_CONFIG"}
    with open(err, "r+b") as stream:
        stream.seek(0, os.SEEK_END)
        done = subprocess.run([entry_point("ishowd"), "run", "--once", "--config", str(cfg)], stderr=stream,
                              env={**env, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, timeout=60)
    assert done.returncode == 0, err.read_text()
    lines = err.read_text().splitlines()
    assert lines and all(re.match(r"<[0-7]>", line) for line in lines), lines
    assert not any(re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line) for line in lines), lines
    assert any(line.startswith("<4>WARNING ") and "no such file (yet)" in line for line in lines), lines
    assert any(line.startswith("<6>INFO ishowd: stopped") for line in lines), lines

    # a JOURNAL_STREAM inherited into a terminal names another file: ishowd stamps its lines itself
    other = subprocess.run([entry_point("ishowd"), "run", "--once", "--config", str(cfg)], capture_output=True,
                           text=True, env={**env, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, timeout=60)
    assert other.returncode == 0 and "<6>" not in other.stderr
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", other.stderr), other.stderr

    # a configuration error at start: an error, for journalctl -p err
    bad = tmp_path / "bad.toml"
    bad.write_text('[sampling]\ninterval = "fast"\n')
    with open(err, "wb") as stream:
        refused = subprocess.run([entry_point("ishowd"), "run", "--config", str(bad)], stderr=stream,
                                 env={**env, "JOURNAL_STREAM": f"{st.st_dev}:{os.fstat(stream.fileno()).st_ino}"},
                                 timeout=60)
    assert refused.returncode == 78
    assert err.read_text().startswith(f"<3>ishowd: configuration error: {bad}: [sampling] interval")


def test_a_multiline_record_keeps_its_priority_on_every_line():
    from ishowd.daemon import JournalFormatter
    formatter = JournalFormatter("%(levelname)s %(name)s: %(message)s")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("ishowd", logging.ERROR, __file__, 1, "first\nsecond", None, sys.exc_info())
    lines = formatter.format(record).split("\n")
    assert len(lines) > 3 and lines[0] == "<3>ERROR ishowd: first" and lines[1] == "<3>second"
    assert all(line.startswith("<3>") for line in lines) and lines[-1] == "<3>RuntimeError: boom"
    for level, prio in ((logging.DEBUG, 7), (logging.INFO, 6), (logging.WARNING, 4), (logging.CRITICAL, 2)):
        text = formatter.format(logging.LogRecord("ishowd", level, __file__, 1, "x", None, None))
        assert text.startswith(f"<{prio}>")


# --- the unit -------------------------------------------------------------------------------------


def unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_unit_speaks_notify_has_a_watchdog_and_reloads_by_sighup():
    unit = unit_settings()
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Restart"] == ["on-failure"] and unit["RestartPreventExitStatus"] == ["78 65"]
    assert unit["WatchdogSec"] and "PrivateDevices" not in unit


@needs_analyze
def test_the_unit_verifies(tmp_path):
    """``systemd-analyze verify`` wants the ExecStart binary to exist: a copy runs the installed one."""
    copy = tmp_path / "ishowd.service"
    text = UNIT.read_text()
    assert "ExecStart=/opt/ishowd/venv/bin/ishowd " in text
    copy.write_text(text.replace("ExecStart=/opt/ishowd/venv/bin/ishowd ", f"ExecStart={entry_point('ishowd')} "))
    done = subprocess.run([ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


@needs_analyze
def test_the_unit_is_rated_at_most_2_0_exposed():
    done = subprocess.run([ANALYZE, "security", "--offline=true", "--threshold=20", str(UNIT)],
                          capture_output=True, text=True, timeout=60)
    rating = re.search(r"Overall exposure level for ishowd\.service: (\d+\.\d)", done.stdout + done.stderr)
    assert rating, done.stdout + done.stderr
    assert float(rating.group(1)) <= 2.0 and done.returncode == 0, done.stdout
