"""GET /metrics from a running daemon, in the Prometheus text format: the readings, the RTF
histogram kept in the store, build_info, TLS beyond loopback, and an idle server that sleeps."""
from __future__ import annotations

import bisect
import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ishowd.catalog import registry
from ishowd.exporter import families
from ishowd.specs.backend import RTF_BUCKETS
from ishowd.store.reader import Latest

from backend_harness import ISHOWD, Harness
from conftest import entry_point, write_config
from standin_backend import StandinBackend
from test_daemon import ticks, wait_for

BOUNDS = tuple(float(b) for b in RTF_BUCKETS) + (math.inf,)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exposition(fams) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    class Fixed:
        def collect(self):
            return fams
    reg = CollectorRegistry(auto_describe=False)
    reg.register(Fixed())
    return generate_latest(reg).decode()


def test_families_escape_labels_declare_types_and_rename_the_last_rtf():
    text = exposition(families([Latest("backend_starts_total", {}, 0, 3.0),
                                Latest("disk_free_bytes", {"path": 'we"ird\\path\nx'}, 0, 5e9),
                                Latest("memory_total_bytes", {}, 0, 34359738368.0),
                                Latest("tts_rtf", {"engine": "f5", "voice": "walter", "source": "api"}, 0, 0.25)],
                               {}, registry(), "9.9.9"))
    assert "# TYPE disk_free_bytes gauge" in text
    assert 'disk_free_bytes{path="we\\"ird\\\\path\\nx"} 5e+09' in text
    assert "memory_total_bytes 3.4359738368e+10" in text
    assert "# TYPE backend_starts_total counter\nbackend_starts_total 3.0" in text
    assert 'ishowd_build_info{version="9.9.9"} 1.0' in text
    # the histogram owns the name tts_rtf: the newest value is beside it, as a gauge of its own
    assert "# TYPE tts_rtf_last gauge" in text
    assert 'tts_rtf_last{engine="f5",source="api",voice="walter"} 0.25' in text
    assert "tts_rtf{" not in text and "# TYPE tts_rtf " not in text


def test_histogram_family_is_cumulative_over_every_bound():
    stored = {("f5", "walter", "api"): {0.2: (3, 0.55), 0.5: (1, 0.4), math.inf: (2, 13.0)}}
    parsed = {f.name: f for f in text_string_to_metric_families(exposition(families([], stored, registry(), "1")))}
    samples = {(s.name, s.labels.get("le")): s.value for s in parsed["tts_rtf"].samples}
    assert parsed["tts_rtf"].type == "histogram"
    want = [0, 3, 3, 3, 3, 4, 4, 4, 4, 6]
    assert [samples[("tts_rtf_bucket", le)] for le in
            ("0.15", "0.2", "0.25", "0.3", "0.35", "0.5", "1.0", "2.0", "5.0", "+Inf")] == want
    assert samples[("tts_rtf_count", None)] == 6
    assert samples[("tts_rtf_sum", None)] == pytest.approx(13.95)


def test_running_daemon_serves_metrics(tmp_path):
    port = free_port()
    cfg = write_config(tmp_path, sampling={"interval": "1s"})
    cfg.write_text(cfg.read_text().replace('listen = ""', f'listen = "127.0.0.1:{port}"'))
    proc = subprocess.Popen([entry_point("ishowd"), "run", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(ticks(tmp_path / "ishowd.db")) >= 1, what="a tick")

        def scrape():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                    return resp.headers["Content-Type"], resp.read().decode()
            except OSError:
                return None
        ctype, body = wait_for(scrape, what="the exporter")
        assert ctype.startswith("text/plain; version=0.0.4")
        assert "# HELP memory_total_bytes Physical memory." in body
        assert re.search(r'^ishowd_collector_success\{collector="host"\} 1\.0$', body, re.M)
        assert f'ishowd_build_info{{version="{metadata.version("ishowd")}"}} 1.0' in body
        for line in body.splitlines():
            assert line.startswith("#") or re.fullmatch(r'[a-z_]+(\{[^}]*\})? \S+', line), line
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
            raise AssertionError("expected 404")
        except urllib.error.HTTPError as err:
            assert err.code == 404
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0


def test_a_store_that_cannot_be_read_is_503_and_stop_lets_the_port_go(tmp_path):
    """The exporter in this process, over a path with no store: each scrape is refused with 503,
    and the server goes on to serve the next."""
    from ishowd import catalog, exporter
    port = free_port()
    cfg = catalog.loads_config(f'[exporter]\nlisten = "127.0.0.1:{port}"\n', "<test>")
    server = exporter.start(cfg, str(tmp_path / "none.db"), registry())
    assert server is not None
    try:
        for _ in range(2):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
            assert err.value.code == 503
    finally:
        started = time.monotonic()
        exporter.stop(server)
    assert time.monotonic() - started < 2
    with socket.socket() as s:      # the address is free again at once (a reload binds it anew, as here)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


# --- the RTF histogram, from the store ------------------------------------------------------

def expected_histogram(db) -> dict:
    """(engine, voice, source) -> {bound: count}, from every stored record, by brute force."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT engine, voice, source, rtf FROM rtf_records WHERE rtf IS NOT NULL").fetchall()
    finally:
        conn.close()
    out: dict = {}
    for engine, voice, source, rtf in rows:
        le = BOUNDS[bisect.bisect_left(BOUNDS, rtf)]
        series = out.setdefault((engine, voice, source), {})
        series[le] = series.get(le, 0) + 1
    return out


def stored_histogram(db) -> dict:
    from ishowd.store.reader import Reader
    r = Reader(str(db))
    try:
        return {k: {le: n for le, (n, _) in v.items()} for k, v in r.rtf_histogram().items()}
    finally:
        r.close()


# a spread over every bucket, bounds themselves included (le is "less or equal")
PLANTED = (0.1, 0.15, 0.18, 0.2, 0.22, 0.25, 0.28, 0.3, 0.33, 0.35, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5)


def plant(b: StandinBackend, rtfs, *, voice="walter") -> bytes:
    return b"".join(b.api_bytes(voice=voice, rtf=v) for v in rtfs)


def test_histogram_counts_each_record_once(tmp_path):
    """Every stored record is in the histogram once: read again (the positions forgotten, as
    when a rotated copy is listed twice) it is a duplicate and counts nothing; what is new among
    what is read again counts. Empty audio has no RTF and is not observed."""
    h = Harness(tmp_path)
    b = StandinBackend(h.log)
    b.truncate_and_open()
    b.write(b.boot_lines() + plant(b, PLANTED) + plant(b, PLANTED[:5], voice="demo")
            + b.api_bytes(waveform_len=0) + b.chat_bytes(rtf=0.31))
    h.once()
    first = expected_histogram(h.db)
    assert sum(first[("f5", "walter", "api")].values()) == len(PLANTED)
    assert set(first) == {("f5", "walter", "api"), ("f5", "demo", "api"), ("f5", "walter", "chat")}
    assert stored_histogram(h.db) == first

    def forget_positions():
        conn = sqlite3.connect(h.db)
        with conn:
            conn.execute("DELETE FROM log_positions")
        conn.close()
    forget_positions()
    h.once()
    assert h.counter("ingest", "duplicates") == len(PLANTED) + 5 + 2
    assert stored_histogram(h.db) == first

    b.write(plant(b, (0.26, 0.9, 9.0)))
    forget_positions()
    h.once()
    after = expected_histogram(h.db)
    assert sum(after[("f5", "walter", "api")].values()) == len(PLANTED) + 3
    assert stored_histogram(h.db) == after


def test_histogram_survives_kill_9_during_ingestion(tmp_path):
    """Killed at several points of a long catch-up, the daemon leaves a histogram that is exactly
    the records stored: both move in one transaction."""
    h = Harness(tmp_path)
    b = StandinBackend(h.log)
    b.truncate_and_open()
    rtfs = [PLANTED[i % len(PLANTED)] for i in range(6000)]
    for i in range(0, len(rtfs), 500):
        b.write(plant(b, rtfs[i:i + 500]))
    kills = 0
    for wanted in (1, 1500, 3500):
        h.start()
        h.wait_for(lambda: h.count() >= wanted, timeout=60, poll=0.005)
        h.kill9()
        kills += 1
        assert stored_histogram(h.db) == expected_histogram(h.db)
    h.start()
    assert h.wait_count(len(rtfs)) == len(rtfs)
    h.stop()
    assert stored_histogram(h.db) == expected_histogram(h.db)
    assert sum(sum(v.values()) for v in stored_histogram(h.db).values()) == len(rtfs)


def test_migration_backfills_the_histogram_from_the_records(tmp_path):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from ishowd.store import migrate
    db = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{db}")   # a real store of revision 0005, before the histogram
    with engine.begin() as conn:
        alembic = Config()
        alembic.set_main_option("script_location", migrate.migrations_dir())
        alembic.attributes["connection"] = conn
        command.upgrade(alembic, "0005")
    engine.dispose()
    conn = sqlite3.connect(db)
    with conn:
        rows = [(i, src, voice, 100 + i, 1.0, rtf, "f5", 0, "/l")
                for i, (src, voice, rtf) in enumerate(
                    [("api", "walter", v) for v in PLANTED] + [("benchmark", "walter", 0.27), ("chat", "demo", None),
                                                               ("chat", "demo", 0.31)])]
        conn.executemany("INSERT INTO rtf_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.close()
    migrate.upgrade(str(db))
    want = expected_histogram(db)
    assert set(want) == {("f5", "walter", "api"), ("f5", "walter", "benchmark"), ("f5", "demo", "chat")}
    assert stored_histogram(db) == want
    from ishowd.store.reader import Reader
    r = Reader(str(db))
    try:
        sums = {k: sum(t for _, t in v.values()) for k, v in r.rtf_histogram().items()}
    finally:
        r.close()
    assert sums[("f5", "walter", "api")] == pytest.approx(sum(PLANTED))


def test_histogram_scraped_from_the_daemon(tmp_path):
    port = free_port()
    h = Harness(tmp_path)
    Path(h.config).write_text(Path(h.config).read_text().replace('listen = ""', f'listen = "127.0.0.1:{port}"'))
    b = StandinBackend(h.log)
    b.truncate_and_open()
    b.write(plant(b, PLANTED))
    h.start()
    try:
        h.wait_count(len(PLANTED))

        def scrape():
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            except OSError:
                return None
        body = wait_for(lambda: (lambda t: t if t and "tts_rtf_count" in t else None)(scrape()), what="the histogram")
    finally:
        h.stop()
    fam = {f.name: f for f in text_string_to_metric_families(body)}["tts_rtf"]
    buckets = {s.labels["le"]: s.value for s in fam.samples if s.name == "tts_rtf_bucket"}
    cumulative = [sum(1 for v in PLANTED if v <= le) for le in BOUNDS]
    assert [buckets[k] for k in ("0.15", "0.2", "0.25", "0.3", "0.35", "0.5", "1.0", "2.0", "5.0", "+Inf")] \
        == cumulative
    assert {s.labels["source"] for s in fam.samples} == {"api"}


# --- TLS beyond loopback -------------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made by the
    openssl command line."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed: it makes the test's certificates")
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=test CA", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", *(["-extfile", "san.ext"] if name == "server" else []), cwd=d)
    return d


def tls_daemon(tmp_path, pki, port, *, client_ca: bool):
    cfg = write_config(tmp_path, sampling={"interval": "1s"})
    cfg.write_text(cfg.read_text().replace(
        'listen = ""', f'listen = "127.0.0.1:{port}"\ntls_cert = "{pki / "server.pem"}"\n'
                       f'tls_key = "{pki / "server.key"}"\n'
                       + (f'client_ca = "{pki / "ca.pem"}"\n' if client_ca else "")))
    return subprocess.Popen([ISHOWD, "run", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def https_get(port, pki, *, cert: bool):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", timeout=5, context=ctx) as resp:
        return resp.read().decode()


def test_tls_with_client_certificates_required(tmp_path, pki):
    port = free_port()
    proc = tls_daemon(tmp_path, pki, port, client_ca=True)
    try:
        def served():
            try:
                return https_get(port, pki, cert=True)
            except (OSError, ssl.SSLError):
                return None
        body = wait_for(served, what="the exporter over HTTPS")
        assert "ishowd_build_info" in body
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            https_get(port, pki, cert=False)
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        # a refused client costs its own thread only: the next scrape is served
        assert "ishowd_build_info" in https_get(port, pki, cert=True)
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0, proc.stderr.read()


def test_tls_a_silent_client_does_not_stop_scrapes(tmp_path, pki):
    """A client that connects and never starts its handshake holds only its own request thread."""
    port = free_port()
    proc = tls_daemon(tmp_path, pki, port, client_ca=False)
    try:
        wait_for(lambda: _try(lambda: https_get(port, pki, cert=False)), what="the exporter over HTTPS")
        with socket.create_connection(("127.0.0.1", port)):
            assert "ishowd_build_info" in https_get(port, pki, cert=False)
    finally:
        proc.terminate()
        proc.wait(20)


def _try(fn):
    try:
        return fn()
    except (OSError, ssl.SSLError):
        return None


def test_a_reload_turns_tls_on_at_the_same_address(tmp_path, pki):
    """SIGHUP with tls_cert/tls_key added (or a certificate renewed in place) keeps the address
    and serves HTTPS from the next connection on."""
    port = free_port()
    cfg = write_config(tmp_path, sampling={"interval": "1s"})
    plain = cfg.read_text().replace('listen = ""', f'listen = "127.0.0.1:{port}"')
    cfg.write_text(plain)
    proc = subprocess.Popen([ISHOWD, "run", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _try(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)),
                 what="the exporter over HTTP")
        cfg.write_text(plain.replace(f'listen = "127.0.0.1:{port}"',
                                     f'listen = "127.0.0.1:{port}"\ntls_cert = "{pki / "server.pem"}"\n'
                                     f'tls_key = "{pki / "server.key"}"'))
        proc.send_signal(signal.SIGHUP)
        body = wait_for(lambda: _try(lambda: https_get(port, pki, cert=False)), what="the exporter over HTTPS")
        assert "ishowd_build_info" in body
    finally:
        proc.terminate()
        proc.wait(20)


def check_config(tmp_path, exporter: str) -> subprocess.CompletedProcess:
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace('[exporter]\nlisten = ""\n', "[exporter]\n" + exporter))
    return subprocess.run([ISHOWD, "run", "--config", str(cfg), "--once"], capture_output=True, text=True,
                          timeout=60)


def test_beyond_loopback_needs_tls_or_plaintext_said(tmp_path, pki):
    r = check_config(tmp_path, 'listen = "0.0.0.0:0"\n')
    assert r.returncode == 78, r.stderr
    assert "[exporter] listen" in r.stderr and "tls_cert" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert check_config(tmp_path, 'listen = "0.0.0.0:0"\nplaintext = true\n').returncode == 0
    assert check_config(tmp_path, 'listen = "[::1]:0"\n').returncode == 0
    ok = f'listen = "0.0.0.0:0"\ntls_cert = "{pki / "server.pem"}"\ntls_key = "{pki / "server.key"}"\n'
    assert check_config(tmp_path, ok).returncode == 0
    missing = ok.replace(str(pki / "server.key"), str(tmp_path / "nonexistent.key"))
    r = check_config(tmp_path, missing)
    assert r.returncode == 78 and "[exporter] tls_key" in r.stderr and "nonexistent.key" in r.stderr, r.stderr
    swapped = ok.replace("server.key", "client.key")
    r = check_config(tmp_path, swapped)
    assert r.returncode == 78 and "[exporter] tls_cert/tls_key" in r.stderr, r.stderr
    r = check_config(tmp_path, ok + f'client_ca = "{pki / "ca.key"}"\n')
    assert r.returncode == 78 and "[exporter] client_ca" in r.stderr, r.stderr


# --- idle ------------------------------------------------------------------------------------------

def wakeups(pid: int) -> int:
    """How many times the process's threads have been scheduled so far (/proc/PID/task/*/schedstat)."""
    n = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            n += int((task / "schedstat").read_text().split()[2])
        except OSError:     # a thread that ended meanwhile
            continue
    return n


def test_an_idle_exporter_sleeps_until_a_request(tmp_path):
    """The serving thread wakes for requests only, and stopping it still takes a moment. With
    everything else hourly the daemon, once started, is not scheduled at all; the stock poll
    woke it twice a second."""
    if not Path(f"/proc/{os.getpid()}/schedstat").exists():
        pytest.skip("this kernel has no schedstat in /proc: the daemon's wake-ups cannot be counted")
    port = free_port()
    cfg = write_config(tmp_path, sampling={"interval": "1h"}, rtf={"interval": "1h"},
                       backend={"health_interval": "1h"})
    cfg.write_text(cfg.read_text().replace('listen = ""', f'listen = "127.0.0.1:{port}"'))
    proc = subprocess.Popen([ISHOWD, "run", "--config", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _try(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)),
                 what="the exporter")
        seen = [wakeups(proc.pid)]

        def settled():      # its start-up work done: a whole second without a wake-up
            time.sleep(1)
            seen.append(wakeups(proc.pid))
            return seen[-1] == seen[-2]
        wait_for(settled, timeout=30, what="the daemon to settle")
        time.sleep(3)       # a span to count wake-ups in (six polls fell in it), not a race
        assert wakeups(proc.pid) - seen[-1] <= 1
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()


# --- job and audit results as metrics ---------------------------------------------------------

def test_audit_checks_as_metrics_from_the_last_run_or_the_store(tmp_path):
    """Each check of the latest audit that ran checks is ishowd_audit_check_passed{check,group};
    after a start, before any run, the newest recorded run's (a skipped run since has none)."""
    import json

    from ishowd import catalog
    from ishowd.jobs.audit import Audit
    from ishowd.jobs.runner import Run
    from ishowd.store import migrate
    db = tmp_path / "ishowd.db"
    migrate.upgrade(str(db))
    cfg = catalog.loads_config(f'[storage]\npath = "{db}"\n')
    checks = [{"check": "gpu-locked", "group": "hardware", "passed": False, "detail": "not locked"},
              {"check": "nfe-step", "group": "optimisation", "passed": True, "detail": "8"}]
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO job_runs (job, started, finished, status, detail, result) VALUES "
                     "('audit', 1, 2, 'failed', '', ?)", (json.dumps({"checks": checks}),))
        conn.execute("INSERT INTO job_runs (job, started, finished, status, detail, result) VALUES "
                     "('audit', 3, 4, 'skipped', 'no quiet spell', '{}')")
    conn.close()

    def as_dict(samples):
        return {(s.labels["check"], s.labels["group"]): s.value for s in samples}
    assert as_dict(Audit(cfg).samples(None)) == {("gpu-locked", "hardware"): 0.0, ("nfe-step", "optimisation"): 1.0}
    audit = Audit(cfg)
    fresh = Run(5, "audit", 5.0, 6.0, "ok", "", {"checks": [dict(checks[0], passed=True)]}, "operator")
    assert as_dict(audit.samples(fresh)) == {("gpu-locked", "hardware"): 1.0}
    skipped = Run(6, "audit", 7.0, 8.0, "skipped", "", {}, "schedule")
    assert as_dict(audit.samples(skipped)) == {("gpu-locked", "hardware"): 1.0}
    text = exposition(families([Latest("ishowd_audit_check_passed", {"check": "gpu-locked", "group": "hardware"},
                                       0, 1.0)], {}, registry(), "1"))
    assert "# TYPE ishowd_audit_check_passed gauge" in text
