"""A fleet scraped by a real Prometheus server: three daemons on loopback (two Jetson fixture
trees, locked and unlocked, and a plain PC), each ingesting a backend log with planted RTFs,
and Debian's ``prometheus`` scraping them every second; the assertions go through its HTTP API."""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from ishowd.specs.backend import RTF_BUCKETS

from backend_harness import ISHOWD
from hw_helpers import board_root, toml_text
from standin_backend import StandinBackend

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus server on this machine (Debian's "
                                "prometheus package; .ci/run installs it)")

# Each box's API RTFs, spread so that the fleet's p95 falls inside a bucket, not on a bound; the
# chat ones are there to be left out by the query.
BOXES = {
    "orin-jp6-locked": [0.16 + 0.005 * i for i in range(14)] + [0.27, 0.29],
    "orin-jp6-unlocked": [0.26 + 0.004 * i for i in range(12)] + [0.33, 0.42, 0.47],
    "x86-plain": [0.31, 0.36, 0.38, 0.44, 0.49, 6.0],
}
CHAT = [0.9, 3.0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def expected_quantile(q: float, values) -> float:
    """``histogram_quantile`` as Prometheus computes it from the bucket counts of ``values``:
    the bucket the rank falls in, then linear interpolation within it (the first bucket starts at
    0; a rank in +Inf gives the highest finite bound)."""
    bounds = [float(b) for b in RTF_BUCKETS] + [math.inf]
    counts = [sum(1 for v in values if v <= le) for le in bounds]
    rank = q * counts[-1]
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(bounds) - 1:
        return bounds[-2]
    start, below = (0.0, 0) if b == 0 else (bounds[b - 1], counts[b - 1])
    return start + (bounds[b] - start) * (rank - below) / (counts[b] - below)


def fixture_gpu(board: str) -> tuple[float, float]:
    """(temperature °C, locked 1/0) read from the board's fixture files, independently of ishowd."""
    sys_root = board_root(board) / "sys"
    temp = next(int((z / "temp").read_text()) / 1000 for z in sorted((sys_root / "class" / "thermal").iterdir())
                if (z / "type").read_text().strip() == "gpu-thermal")
    gpu = next(d for d in (sys_root / "class" / "devfreq").iterdir()
               if (d / "device" / "of_node" / "name").read_text().strip("\0\n") == "gpu")
    top = max(int(f) for f in (gpu / "available_frequencies").read_text().split())
    locked = int((gpu / "min_freq").read_text()) == int((gpu / "max_freq").read_text()) == top
    return temp, float(locked)


def api(port: int, path: str, **params) -> dict:
    url = f"http://127.0.0.1:{port}{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def query(port: int, promql: str) -> list:
    answer = api(port, "/api/v1/query", query=promql)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def wait(what: str, predicate, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = predicate()
        except OSError:         # the server not listening yet
            got = None
        if got:
            return got
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def fleet(tmp_path):
    procs, ports = [], {}
    try:
        for board, rtfs in BOXES.items():
            d = tmp_path / board
            (d / "logs").mkdir(parents=True)
            backend = StandinBackend(d / "logs" / "backend.log")
            backend.truncate_and_open()
            backend.write(backend.boot_lines() + b"".join(backend.api_bytes(rtf=v) for v in rtfs)
                          + b"".join(backend.chat_bytes(rtf=v) for v in CHAT))
            os.close(backend.fd)
            port = ports[board] = free_port()
            config = d / "ishowd.toml"
            config.write_text(f'[storage]\npath = "{d / "ishowd.db"}"\n[sampling]\ninterval = "1s"\n'
                              f'[exporter]\nlisten = "127.0.0.1:{port}"\n'
                              f'[rtf]\nlogs = ["{d / "logs" / "backend.log"}"]\ninterval = "1s"\n'
                              f'[backend]\nurl = "http://127.0.0.1:9"\n' + toml_text(board_root(board)))
            procs.append(subprocess.Popen([ISHOWD, "run", "--config", str(config)], stdout=subprocess.DEVNULL,
                                          stderr=open(d / "daemon.log", "wb")))
        prom_port = free_port()
        targets = [f"127.0.0.1:{p}" for p in ports.values()]
        (tmp_path / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: ishowd\n    static_configs:\n"
            f"      - targets: {json.dumps(targets)}\n")
        procs.append(subprocess.Popen(
            [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb")))
        yield prom_port, ports
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_prometheus_scrapes_the_fleet(fleet):
    prom, ports = fleet
    instance = {board: f"127.0.0.1:{port}" for board, port in ports.items()}

    def all_up():
        active = api(prom, "/api/v1/targets")["data"]["activeTargets"]
        return len(active) == 3 and all(t["health"] == "up" for t in active)
    wait("all three targets up", all_up)
    assert {r["metric"]["instance"]: r["value"][1] for r in query(prom, "up")} == \
        {i: "1" for i in instance.values()}

    planted = [v for rtfs in BOXES.values() for v in rtfs]
    # the newest scrape of every box has all its records in
    wait("every record in the histogram",
         lambda: [r["value"][1] for r in query(prom, 'sum(tts_rtf_count{source="api"})')] == [str(len(planted))])

    for board, inst in instance.items():
        temps = query(prom, f'gpu_temperature_celsius{{instance="{inst}"}}')
        locked = query(prom, f'gpu_frequency_locked{{instance="{inst}"}}')
        if board == "x86-plain":
            assert temps == [] and locked == [], "a box with no GPU has no GPU metrics"
            continue
        temp, lock = fixture_gpu(board)
        assert [float(r["value"][1]) for r in temps] == [pytest.approx(temp)], board
        assert [float(r["value"][1]) for r in locked] == [lock], board
    assert {fixture_gpu(b)[1] for b in ("orin-jp6-locked", "orin-jp6-unlocked")} == {0.0, 1.0}

    p95 = query(prom, 'histogram_quantile(0.95, sum by (le) (tts_rtf_bucket{source="api"}))')
    want = expected_quantile(0.95, planted)
    assert RTF_BUCKETS[4] < want < RTF_BUCKETS[5]     # inside a bucket, where interpolation shows
    assert [float(r["value"][1]) for r in p95] == [pytest.approx(want, rel=1e-9)]
    assert {r["metric"]["version"] for r in query(prom, "ishowd_build_info")} != set()
    assert len(query(prom, "ishowd_build_info == 1")) == 3
