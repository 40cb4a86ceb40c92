"""The health probe, the backend process's memory, the config keys and the schema."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backend_harness import ISHOWD
from ishowd.catalog import loads_config as loads
from ishowd.config import ConfigError
from ishowd.collectors.backend import probe
from standin_backend import StandinBackend


def serve(handler_fn):
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            handler_fn(self)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def answer(status, body):
    def fn(req):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req.send_response(status)
        req.send_header("content-length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)
    return fn


def test_probe_against_the_stand_in(tmp_path):
    b = StandinBackend(tmp_path / "backend.log").start()
    try:
        assert probe(b.url, 2) == 1.0
        assert b"/api/health" in open(b.log_path, "rb").read()   # every probe lands in the log
        url = b.url
    finally:
        b.stop()
    assert probe(url, 1) == 0.0                                   # nothing listens any more


@pytest.mark.parametrize("status,body", [(200, {"status": "down"}), (500, b"oops"), (200, b"not json"),
                                         (200, [1, 2])])
def test_probe_unhealthy_answers(status, body):
    srv, url = serve(answer(status, body))
    try:
        assert probe(url, 2) == 0.0
    finally:
        srv.shutdown()


def test_probe_times_out_quickly():
    release = threading.Event()
    srv, url = serve(lambda req: release.wait(10))
    try:
        t = time.monotonic()
        assert probe(url, 0.3) == 0.0
        assert time.monotonic() - t < 3
    finally:
        release.set()
        srv.shutdown()


def test_probe_ignores_proxies(monkeypatch):
    srv, url = serve(answer(200, {"status": "ok", "voices": 1, "default_voice": "walter"}))
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    try:
        assert probe(url, 2) == 1.0
    finally:
        srv.shutdown()


# --- backend_rss_bytes -------------------------------------------------------------------

BINARY = "/ssd/ishowtts/target/release/ishowtts-backend"


def fake_proc(root, pid, *, exe=None, exe_unreadable=False, cmdline=b"", comm=b"", rss_kb=1000):
    d = root / str(pid)
    d.mkdir()
    if exe_unreadable:
        (d / "exe").mkdir()                 # readlink fails (EINVAL), like EACCES would
    elif exe is not None:
        os.symlink(exe, d / "exe")
    (d / "cmdline").write_bytes(cmdline)
    (d / "comm").write_bytes(comm + b"\n")
    (d / "status").write_text(f"Name:\t{comm.decode()}\nVmPeak:\t 9 kB\nVmRSS:\t {rss_kb} kB\n")


def collector(tmp_path, procfs):
    from ishowd.collectors import TickContext
    from ishowd.collectors.backend import BACKEND_RSS, Backend
    cfg = loads(f'[host]\nprocfs_root = "{procfs}"\n[backend]\nbinary = "{BINARY}"\nurl = "http://127.0.0.1:9"\n')
    c = Backend(cfg)
    assert c.setup() is None
    return c, lambda: [s.value for s in c.collect(TickContext(now=time.time() + 1000, config=cfg))
                       if s.metric is BACKEND_RSS]


def test_rss_by_executable_not_by_name(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    fake_proc(proc, 10, exe="/usr/bin/cargo", cmdline=b"cargo\0build\0-p\0ishowtts-backend\0", comm=b"cargo")
    fake_proc(proc, 11, exe="/usr/bin/bash", cmdline=b"bash\0scripts/run_backend.sh\0ishowtts-backend\0",
              comm=b"bash")
    c, read = collector(tmp_path, proc)
    assert read() == []                     # no backend: absent, never zero
    fake_proc(proc, 42, exe=BINARY + " (deleted)", cmdline=BINARY.encode() + b"\0", comm=b"ishowtts-backen",
              rss_kb=2048)
    c.process._scanned_at = -1e9
    assert read() == [2048 * 1024]


def test_rss_when_exe_cannot_be_read(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    fake_proc(proc, 7, exe_unreadable=True, cmdline=b"cargo\0run\0-p\0ishowtts-backend\0", comm=b"cargo")
    fake_proc(proc, 8, exe_unreadable=True, cmdline=b"./target/release/ishowtts-backend\0", comm=b"ishowtts-backen",
              rss_kb=5)
    c, read = collector(tmp_path, proc)
    assert read() == [5 * 1024]


# --- configuration --------------------------------------------------------------------------

def test_config_keys_and_errors(tmp_path):
    cfg = loads("")
    assert cfg.rtf.logs == ["/ssd/ishowtts/logs/backend.log"] and cfg.rtf.interval == 5
    assert cfg.backend.health_interval == 30 and cfg.rtf.baseline == 0.30 and cfg.rtf.threshold == 0.20
    with pytest.raises(ConfigError, match=r"\[rtf\] ignore_errors"):
        loads('[rtf]\nignore_errors = ["(unclosed"]\n', "x.toml")
    with pytest.raises(ConfigError, match=r"\[backend\] url"):
        loads('[backend]\nurl = "127.0.0.1:27121"\n', "x.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('[rtf]\nbatch_bytes = 10\n')
    r = subprocess.run([ISHOWD, "run", "--config", str(bad), "--once"], capture_output=True, text=True)
    assert r.returncode == 78 and "batch_bytes" in r.stderr and str(bad) in r.stderr


def test_migration_matches_schema(tmp_path):
    from sqlalchemy import create_engine

    from ishowd.store.schema import metadata
    from ishowd.store.writer import Store
    Store(str(tmp_path / "migrated.db")).close()
    engine = create_engine(f"sqlite:///{tmp_path / 'direct.db'}")
    metadata.create_all(engine)
    engine.dispose()

    def shape(path):
        conn = sqlite3.connect(path)
        out = {}
        for t in ("rtf_records", "log_positions", "log_counters"):
            out[t] = conn.execute(f"PRAGMA table_info({t})").fetchall()
            out[t + "/pk"] = conn.execute("SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_master WHERE name = ?",
                                          (t,)).fetchone()
        conn.close()
        return out
    assert shape(tmp_path / "migrated.db") == shape(tmp_path / "direct.db")


def test_daemon_imports_no_heavy_libraries(tmp_path):
    code = ("import sys\nfrom ishowd import catalog\ncatalog.collectors(); catalog.tasks()\n"
            "import ishowd.backend.ingest, ishowd.daemon\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy','matplotlib','torch'}))")
    r = subprocess.run([os.path.join(os.path.dirname(ISHOWD), "python"), "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "[]", r.stderr


def test_backend_up_never_holds_up_a_tick(tmp_path):
    """Only the first tick waits for its probe; later probes run beside the ticks."""
    from ishowd.collectors import TickContext
    from ishowd.collectors.backend import BACKEND_UP, Backend
    release = threading.Event()
    srv, url = serve(lambda req: release.wait(10))
    try:
        cfg = loads(f'[backend]\nurl = "{url}"\nhealth_timeout = "300ms"\nhealth_interval = "1s"\n'
                    f'[deployment]\nroot = "{tmp_path}"\n')
        c = Backend(cfg)
        c.setup()
        ctx = TickContext(now=time.time(), config=cfg)
        t = time.monotonic()
        first = [s.value for s in c.collect(ctx) if s.metric is BACKEND_UP]
        assert first == [0.0] and time.monotonic() - t < 2
        c._probe_started -= 10                     # the next probe is due
        t = time.monotonic()
        assert [s.value for s in c.collect(ctx) if s.metric is BACKEND_UP] == [0.0]   # the last answer
        assert time.monotonic() - t < 0.1          # the probe runs in its own thread
    finally:
        release.set()
        srv.shutdown()


# --- a plain machine stays quiet ----------------------------------------------------------------

def _up(cfg):
    from ishowd.collectors import TickContext
    from ishowd.collectors.backend import BACKEND_UP, Backend
    c = Backend(cfg)
    c.setup()
    return c, lambda: [s.value for s in c.collect(TickContext(now=time.time(), config=cfg)) if s.metric is BACKEND_UP]


def _closed_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_deployment_no_log_and_no_backend_ever_seen_is_no_reading(tmp_path):
    """A laptop: backend_up is absent, so backend-down has nothing to page about."""
    url = f"http://127.0.0.1:{_closed_port()}"
    cfg = loads(f'[backend]\nurl = "{url}"\nhealth_timeout = "300ms"\n[deployment]\nroot = "{tmp_path / "none"}"\n'
                f'[rtf]\nlogs = ["{tmp_path / "none" / "logs" / "backend.log"}"]\n')
    _, up = _up(cfg)
    assert up() == []


@pytest.mark.parametrize("where", ["root", "log"])
def test_a_deployment_or_its_log_makes_a_failed_probe_a_zero(tmp_path, where):
    url = f"http://127.0.0.1:{_closed_port()}"
    log = tmp_path / "logs" / "backend.log"
    if where == "log":
        log.parent.mkdir()
        log.write_bytes(b"")
    root = tmp_path if where == "root" else tmp_path / "none"
    cfg = loads(f'[backend]\nurl = "{url}"\nhealth_timeout = "300ms"\n[deployment]\nroot = "{root}"\n'
                f'[rtf]\nlogs = ["{log}"]\n')
    _, up = _up(cfg)
    assert up() == [0.0]


def test_a_backend_once_seen_then_gone_reads_zero_on_a_plain_machine_too(tmp_path):
    backend = StandinBackend(tmp_path / "backend.log").start()
    try:
        cfg = loads(f'[backend]\nurl = "{backend.url}"\nhealth_timeout = "1s"\nhealth_interval = "1s"\n'
                    f'[deployment]\nroot = "{tmp_path / "none"}"\n[rtf]\nlogs = ["{tmp_path / "none.log"}"]\n')
        c, up = _up(cfg)
        assert up() == [1.0]
        backend.stop_http()
        c._probe_now()                              # the next answer: refused
        assert up() == [0.0]
    finally:
        backend.stop()


def test_the_plain_machine_run_is_quiet_and_status_says_no_backend_is_here(tmp_path):
    """The README's first command on a laptop: no deployment, no log, nothing answering."""
    from backend_harness import ISHOWCTL
    cfg = tmp_path / "ishowd.toml"
    none = tmp_path / "no-deployment"
    cfg.write_text(f'[storage]\npath = "{tmp_path / "ishowd.db"}"\n[exporter]\nlisten = ""\n'
                   f'[backend]\nurl = "http://127.0.0.1:{_closed_port()}"\nhealth_timeout = "300ms"\n'
                   f'[deployment]\nroot = "{none}"\n[rtf]\nlogs = ["{none / "logs" / "backend.log"}"]\n')
    run = subprocess.run([ISHOWD, "run", "--config", str(cfg), "--once"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "WARNING" not in run.stderr, run.stderr
    status = json.loads(subprocess.run([ISHOWCTL, "--config", str(cfg), "status", "--json"], capture_output=True,
                                       text=True, timeout=60).stdout)
    assert not [m for m in status["metrics"] if m["name"].startswith("backend_")]
    assert status["backend"]["found"] is False
    assert status["backend"]["detail"].startswith(f"no backend configured or found here: no [deployment] root ({none})")
    check = subprocess.run([ISHOWCTL, "--config", str(cfg), "check"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and check.stdout.startswith("ISHOWD OK"), check.stdout
