"""Alerts end to end through the installed commands: restart, `ishowctl check`, `alerts`, `status`."""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time

import pytest

from alerts_helpers import VENV_BIN, make_config, open_store, sample, write_hook
from ishowd.alerts.evaluator import Evaluator


def ishowctl(cfg, *args, timeout=60):
    env = {k: v for k, v in os.environ.items() if k != "ISHOWD_CONFIG"}
    return subprocess.run([str(VENV_BIN / "ishowctl"), "--config", cfg.source, *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def ishowd_once(path):
    env = {k: v for k, v in os.environ.items() if k != "ISHOWD_CONFIG"}
    return subprocess.run([str(VENV_BIN / "ishowd"), "run", "--once", "--config", str(path)], capture_output=True,
                          text=True, timeout=120, env=env)


APPEND = """
import json, os, sys
alert = json.load(sys.stdin)
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"rule": alert["rule"], "state": alert["state"], "env": os.environ["ISHOWD_ALERT_STATE"]}) + "\\n")
"""


def test_a_restart_neither_forgets_a_firing_alert_nor_runs_its_hooks_again(tmp_path):
    log = tmp_path / "hook.log"
    hook = write_hook(tmp_path, "append.py", APPEND)
    rule = """
[[alerts.rules]]
name = "mem"
metric = "memory_total_bytes"
op = "{op}"
threshold = 1
severity = "critical"
summary = "memory total compared with one byte"
[[alerts.hooks]]
command = ["{hook}", "{log}"]
"""
    cfg = make_config(tmp_path, rule.format(op=">", hook=hook, log=log))
    for _ in range(3):               # fires once, then two restarts while it still holds
        proc = ishowd_once(cfg.source)
        assert proc.returncode == 0, proc.stderr
    assert [json.loads(line) for line in log.read_text().splitlines()] == [
        {"rule": "mem", "state": "firing", "env": "firing"}]
    assert "still firing from before the restart" in proc.stderr
    active = json.loads(ishowctl(cfg, "alerts", "--json").stdout)
    assert [(a["rule"], a["state"], a["severity"]) for a in active] == [("mem", "firing", "critical")]
    # the operator changes the rule; the next start judges it false: resolved, hooks run once more
    cfg = make_config(tmp_path, rule.format(op="<", hook=hook, log=log))
    assert ishowd_once(cfg.source).returncode == 0
    assert [json.loads(line)["state"] for line in log.read_text().splitlines()] == ["firing", "resolved"]
    assert json.loads(ishowctl(cfg, "alerts", "--json").stdout) == []
    hist = json.loads(ishowctl(cfg, "alerts", "--all", "--json").stdout)["history"]
    assert [(e["rule"], e["state"], [h["status"] for h in e["hooks"]]) for e in hist] == [
        ("mem", "firing", ["ok"]), ("mem", "resolved", ["ok"])]
    table = ishowctl(cfg, "alerts", "--all").stdout
    assert re.search(r"mem\s+firing\s+critical\s+.*append\.py ok \d+\.\ds", table)


CHECK_RULES = """
[[alerts.rules]]
name = "gpu-hot"
metric = "gpu_temperature_celsius"
op = ">"
threshold = 80
severity = "critical"
summary = "GPU above 80 °C"

[[alerts.rules]]
name = "gpu-warm"
metric = "gpu_temperature_celsius"
op = ">"
threshold = 75
severity = "warning"

[[alerts.rules]]
name = "errors"
metric = "backend_log_errors_total"
window = "10m"
aggregate = "increase"
op = ">"
threshold = 0
severity = "info"

[[alerts.rules]]
name = "memory-low"
metric = "memory_available_bytes"
op = "<"
threshold = 5e9
severity = "warning"
"""


def feed(cfg, points: list[tuple[float, list]]):
    store = open_store(cfg)
    ev = Evaluator(cfg, store)
    try:
        for t, batch in points:
            store.write(t, batch)
            ev.run(t)
    finally:
        ev.close()
        store.close()


PERF = re.compile(r"^('[^'=]+'|[^'= ]+)=-?[0-9.]+(s|%|B|c)?(;[0-9.:]*){0,4}$")


def check(cfg):
    proc = ishowctl(cfg, "check")
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout + proc.stderr
    line = lines[0]
    if " | " in line:
        for item in line.split(" | ", 1)[1].split():
            assert PERF.match(item), item
    return proc.returncode, line


def test_check_exit_codes_and_line(tmp_path):
    cfg = make_config(tmp_path, CHECK_RULES)
    now = time.time()

    def at(dt, temp, errors=None, mem=8e9):
        batch = [sample("gpu_temperature_celsius", temp, gpu="gpu0"), sample("memory_available_bytes", mem)]
        if errors is not None:
            batch.append(sample("backend_log_errors_total", errors, level="ERROR"))
        return now + dt, batch

    feed(cfg, [at(-20, 60.0, 0), at(-10, 61.0, 0)])
    code, line = check(cfg)
    assert code == 0 and line.startswith("ISHOWD OK - no alerts firing (4 rules) | ")
    assert "gpu_temperature_celsius[gpu0]=61;75;80" in line and "memory_available_bytes=8000000000B;5000000000:" in line
    assert "critical=0 warning=0 info=0" in line

    feed(cfg, [at(-5, 61.0, 2)])                    # new error lines: info only, still OK
    code, line = check(cfg)
    assert code == 0 and line.startswith("ISHOWD OK - 1 info alert: errors: "
                                         "increase(backend_log_errors_total{level=ERROR}[10m])=2.0 | ")

    feed(cfg, [at(-4, 77.0, 2)])
    code, line = check(cfg)
    assert code == 1 and line.startswith("ISHOWD WARNING - gpu-warm: gpu_temperature_celsius{gpu=gpu0}=77.0, errors:")

    feed(cfg, [at(-3, 84.0, 2, mem=4e9)])
    code, line = check(cfg)
    assert code == 2
    assert line.startswith("ISHOWD CRITICAL - gpu-hot: gpu_temperature_celsius{gpu=gpu0}=84.0, "
                           "gpu-warm: gpu_temperature_celsius{gpu=gpu0}=77.0, "
                           "memory-low: memory_available_bytes=4000000000.0, errors: ")
    assert "critical=1 warning=2 info=1" in line

    # the daemon stops writing: UNKNOWN once the newest sample is older than 3 intervals (30 s)
    with sqlite3.connect(tmp_path / "ishowd.db") as conn:
        conn.execute("UPDATE head SET ts = ts - 40, mono = mono - 40000")  # as if written 40 s ago
    code, line = check(cfg)
    assert code == 3 and re.match(r"ISHOWD UNKNOWN - the daemon has not written for 4\ds \(it samples every 10s", line)


def test_check_is_unknown_when_the_store_cannot_be_read_or_the_config_is_broken(tmp_path):
    cfg = make_config(tmp_path, CHECK_RULES)
    code, line = check(cfg)                         # no store yet
    assert code == 3 and line.startswith("ISHOWD UNKNOWN - cannot read the store: no store at ")
    (tmp_path / "ishowd.db").write_bytes(b"this is not a database" * 100)
    code, line = check(cfg)
    assert code == 3 and line.startswith("ISHOWD UNKNOWN - cannot read the store: ")
    bad = tmp_path / "bad.toml"
    bad.write_text('[[alerts.rules]]\nname = "x"\nmetric = "nope"\nop = ">"\nthreshold = 1\n')
    proc = subprocess.run([str(VENV_BIN / "ishowctl"), "--config", str(bad), "check"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 3
    assert proc.stdout.startswith(f"ISHOWD UNKNOWN - configuration error: {bad}: [[alerts.rules]] x: metric")


def test_status_and_alerts_show_active_alerts(tmp_path):
    cfg = make_config(tmp_path, CHECK_RULES + """
[[alerts.rules]]
name = "slow"
metric = "tts_rtf"
labels = {source = "api"}
window = "1h"
aggregate = "mean"
op = ">"
threshold = 0.35
for = "10m"
""")
    now = time.time()
    feed(cfg, [(now - 2, [sample("gpu_temperature_celsius", 86.0, gpu="gpu0"),
                          sample("tts_rtf", 0.5, now - 3, engine="f5", voice="walter", source="api")])])
    data = json.loads(ishowctl(cfg, "status", "--json").stdout)
    alerts = {a["rule"]: a for a in data["alerts"]}
    assert set(alerts) == {"gpu-hot", "gpu-warm"}
    hot = alerts["gpu-hot"]
    assert {"rule", "severity", "since", "value", "labels", "summary"} <= set(hot)
    assert hot["severity"] == "critical" and hot["value"] == 86.0 and hot["labels"] == {"gpu": "gpu0"}
    assert hot["summary"] == "GPU above 80 °C" and hot["since"].endswith("+00:00")
    text = ishowctl(cfg, "status").stdout
    assert re.search(r"CRITICAL gpu-hot\{gpu=gpu0\} since .*: GPU above 80 °C \(86\.0 °C\)", text)
    assert re.search(r"WARNING  gpu-warm\{gpu=gpu0\}", text)
    assert "pending: slow{engine=f5,source=api,voice=walter}" in text
    table = ishowctl(cfg, "alerts").stdout
    assert re.search(r"gpu-hot\{gpu=gpu0\}\s+critical\s+firing .* 86\.0 °C\s+GPU above 80 °C", table)
    assert re.search(r"slow\{engine=f5,source=api,voice=walter\}\s+warning\s+pending", table)
    listed = json.loads(ishowctl(cfg, "alerts", "--json").stdout)
    assert [(a["rule"], a["state"]) for a in listed] == [("gpu-hot", "firing"), ("gpu-warm", "firing"),
                                                          ("slow", "pending")]
    full = ishowctl(cfg, "alerts", "--all").stdout
    assert re.search(r"gpu-hot\{gpu=gpu0\}\s+firing\s+critical\s+86\.0 °C\s+-", full)


def test_read_paths_import_nothing_heavy(tmp_path):
    cfg = make_config(tmp_path, CHECK_RULES)
    feed(cfg, [(time.time(), [sample("gpu_temperature_celsius", 86.0, gpu="gpu0")])])
    probe = ("import sys, runpy; sys.argv = ['ishowctl', '--config', %r, *%r]\n"
             "try:\n    runpy.run_module('ishowd.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "bad = [m for m in ('torch', 'numpy', 'matplotlib', 'sqlalchemy', 'alembic') if m in sys.modules]\n"
             "print('HEAVY', bad)")
    for args in (["check"], ["alerts", "--all", "--json"], ["status"]):
        proc = subprocess.run([sys.executable, "-c", probe % (cfg.source, args)], capture_output=True, text=True,
                              timeout=60)
        assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr
    code = ("import sys; from ishowd import catalog; from ishowd.alerts.evaluator import Evaluator; "
            "from ishowd.alerts import hooks; from ishowd.tasks import alerts; "
            "print('HEAVY', [m for m in ('torch', 'numpy', 'matplotlib', 'sqlalchemy', 'alembic') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize("args", [["alerts"], ["alerts", "--all"], ["check"]])
def test_a_store_without_alert_tables_reads_as_no_alerts(tmp_path, args):
    cfg = make_config(tmp_path, CHECK_RULES)
    feed(cfg, [(time.time(), [sample("gpu_temperature_celsius", 60.0, gpu="gpu0")])])
    with sqlite3.connect(tmp_path / "ishowd.db") as conn:
        conn.execute("DROP TABLE alert_state")
        conn.execute("DROP TABLE alert_events")
    proc = ishowctl(cfg, *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
