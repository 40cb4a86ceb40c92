"""``ishowctl metrics [PATTERN]`` and shell completion of metric names, through the installed ishowctl."""
from __future__ import annotations

import json
import os
import subprocess

from backend_harness import ISHOWCTL, ISHOWD
from hw_helpers import board_root, toml_text


def _ctl(cfg, *args, env=None):
    return subprocess.run([ISHOWCTL, "--config", str(cfg), *args], capture_output=True, text=True, timeout=60,
                          env=env)


def _store(tmp_path, board="orin-jp6-locked"):
    cfg = tmp_path / "ishowd.toml"
    cfg.write_text(f'[storage]\npath = "{tmp_path / "ishowd.db"}"\n[exporter]\nlisten = ""\n'
                   + toml_text(board_root(board)))
    run = subprocess.run([ISHOWD, "run", "--config", str(cfg), "--once"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return cfg


def test_metrics_lists_each_series_with_its_unit_help_and_latest_value(tmp_path):
    from ishowd import catalog
    cfg = _store(tmp_path)
    got = json.loads(_ctl(cfg, "metrics", "gpu_*", "--json").stdout)
    names = {r["name"] for r in got}
    assert "gpu_frequency_locked" in names and all(n.startswith("gpu_") for n in names)
    lock = next(r for r in got if r["name"] == "gpu_frequency_locked")
    assert lock == {"name": "gpu_frequency_locked", "kind": "gauge", "unit": "boolean", "label_keys": ["gpu"],
                    "help": catalog.metric("gpu_frequency_locked").help, "labels": {"gpu": "17000000.gpu"},
                    "value": 1.0}
    table = _ctl(cfg, "metrics", "gpu_frequency_hz").stdout
    assert "gpu_frequency_hz{gpu=17000000.gpu}" in table and "1.30 GHz" in table


def test_a_metric_this_host_lacks_is_absent_unless_all_is_asked(tmp_path):
    cfg = _store(tmp_path, "x86-plain")
    assert json.loads(_ctl(cfg, "metrics", "gpu_temperature_celsius", "--json").stdout) == []
    every = json.loads(_ctl(cfg, "metrics", "gpu_temperature_celsius", "--all", "--json").stdout)
    assert [(r["name"], r["value"]) for r in every] == [("gpu_temperature_celsius", None)]


def test_a_pattern_that_matches_nothing_is_a_usage_error(tmp_path):
    r = _ctl(_store(tmp_path, "x86-plain"), "metrics", "no_such_*")
    assert r.returncode == 2 and "no metric matches 'no_such_*'" in r.stderr and "Traceback" not in r.stderr


def test_shell_completion_offers_metric_names(tmp_path):
    env = {**os.environ, "COMP_WORDS": "ishowctl history gpu_freq", "COMP_CWORD": "2",
           "_ISHOWCTL_COMPLETE": "bash_complete"}
    r = subprocess.run([ISHOWCTL, "history", "gpu_freq"], capture_output=True, text=True, env=env, timeout=60)
    offered = {line.split(",", 1)[1] for line in r.stdout.splitlines()}
    assert {"gpu_frequency_hz", "gpu_frequency_locked", "gpu_frequency_max_hz"} <= offered
    assert all(name.startswith("gpu_freq") for name in offered)


def test_status_watch_redraws_in_place_until_ctrl_c(tmp_path):
    """Each frame homes the cursor and overwrites its lines; nothing clears the screen between frames."""
    import select
    import signal
    cfg = _store(tmp_path, "x86-plain")
    proc = subprocess.Popen([ISHOWCTL, "--config", str(cfg), "status", "--watch", "0.5"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out = b""
    try:
        while out.count(b"\x1b[H") < 3:
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, f"no frame in 30 s: {out!r}"
            out += os.read(proc.stdout.fileno(), 65536)
    finally:
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out.startswith(b"\x1b[2J\x1b[H") and out.count(b"\x1b[2J") == 1
    frames = out.split(b"\x1b[H")[1:3]
    for frame in frames:
        assert frame.startswith(b"every 0.5s, ") and b"ishowd on " in frame and frame.endswith(b"\x1b[J")
    assert subprocess.run([ISHOWCTL, "--config", str(cfg), "status", "--watch", "--json"], capture_output=True,
                          timeout=60).returncode == 2
