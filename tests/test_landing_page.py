"""``GET /`` on the exporter's address, loaded in a real headless browser (Debian's chromium, which
.ci/run installs): the name, the version, the link to /metrics, the status at a glance, and
nothing from the untrusted log rendered as markup."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from backend_harness import ISHOWD
from standin_backend import StandinBackend

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = "<script>document.title='pwned'</script><b>bold</b>"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


@pytest.fixture
def daemon(tmp_path):
    (tmp_path / "logs").mkdir()
    backend = StandinBackend(tmp_path / "logs" / "backend.log").start(http=False)
    backend.synth("你好", voice=HOSTILE, rtf=0.26)
    port = _free_port()
    cfg = tmp_path / "ishowd.toml"
    cfg.write_text(f'[storage]\npath = "{tmp_path / "ishowd.db"}"\n[sampling]\ninterval = "1s"\n'
                   f'[exporter]\nlisten = "127.0.0.1:{port}"\n[rtf]\nlogs = ["{tmp_path / "logs" / "backend.log"}"]\n'
                   f'interval = "1s"\n[backend]\nurl = "http://127.0.0.1:9"\n')
    proc = subprocess.Popen([ISHOWD, "run", "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while True:     # until the page shows the planted record (ingested, then sampled)
        try:
            status, _, body = _get(url)
            if status == 200 and b"tts_rtf_last" not in body and b"source=api" in body:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "the page never showed the planted request"
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    backend.stop()


def test_the_page_is_html_and_escapes_what_came_from_the_log(daemon):
    status, ctype, body = _get(daemon)
    assert status == 200 and ctype.startswith("text/html")
    text = body.decode()
    assert '<a href="/metrics">/metrics</a>' in text and '<meta http-equiv="refresh"' in text
    assert "<script" not in text and "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in text
    assert "<b>bold" not in text
    assert "http://" not in text.replace(daemon, "") and "https://" not in text    # no external assets
    assert _get(daemon + "nothing")[0] == 404


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian package chromium; .ci/run installs it)")
def test_a_real_browser_renders_it_as_text(daemon, tmp_path):
    args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}", "--no-first-run"]
    dom = subprocess.run(args + ["--dump-dom", daemon], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>ishowd on " in dom.stdout and "pwned" not in dom.stdout.split("</title>")[0]
    assert "<script" not in dom.stdout.lower() and "<b>" not in dom.stdout
    assert "At a glance" in dom.stdout and "alerts firing" in dom.stdout and "RTF, last hour: 1 request, mean 0.2" in dom.stdout
    shot = tmp_path / "landing.png"
    png = subprocess.run(args + ["--window-size=1280,1100", f"--screenshot={shot}", daemon], capture_output=True,
                         text=True, timeout=120)
    assert png.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png.stderr[-2000:]
