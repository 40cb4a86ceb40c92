"""GET /metrics from a running daemon, in the Prometheus text format."""
from __future__ import annotations

import re
import socket
import subprocess
import urllib.request

from ishowd.catalog import registry
from ishowd.exporter import render
from ishowd.store.reader import Latest

from conftest import entry_point, write_config
from test_daemon import ticks, wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_render_escapes_labels_and_declares_types():
    text = render([Latest("disk_free_bytes", {"path": 'we"ird\\path\nx'}, 0, 5e9),
                   Latest("memory_total_bytes", {}, 0, 34359738368.0)], registry())
    assert '# TYPE disk_free_bytes gauge' in text
    assert 'disk_free_bytes{path="we\\"ird\\\\path\\nx"} 5000000000' in text
    assert "memory_total_bytes 34359738368\n" in text


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
        assert re.search(r'^ishowd_collector_success\{collector="host"\} 1$', body, re.M)
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
