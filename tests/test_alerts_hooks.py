"""Hooks as real subprocesses: stdin JSON, environment, timeouts that kill the whole group, retries, bounds."""
from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time

import pytest

from alerts_helpers import db, gone, hook_runs, make_config, open_store, sample, wait_for, write_hook
from ishowd.alerts.evaluator import Evaluator
from ishowd.alerts.hooks import HookRunner, run_command
from ishowd.alerts.rules import Hook

RECORD = """
import json, os, sys
out = sys.argv[1]
data = sys.stdin.read()
env = {k: v for k, v in os.environ.items() if k.startswith("ISHOWD_ALERT_")}
n = len([f for f in os.listdir(out) if f.endswith(".json")])
tmp = os.path.join(out, f".{os.getpid()}.tmp")
with open(tmp, "w") as f:
    json.dump({"stdin": data, "env": env, "argv": sys.argv[2:]}, f)
os.rename(tmp, os.path.join(out, f"{n:03d}-{os.getpid()}.json"))
print("recorded", n)
"""

# Waits until the file named by argv[2] exists (the test releases it); notes start/end times.
BLOCK = """
import os, sys, time
out, release, tag = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.time()
open(os.path.join(out, f"start-{tag}"), "w").write(str(start))
while not os.path.exists(release):
    time.sleep(0.01)
open(os.path.join(out, f"end-{tag}"), "w").write(f"{start} {time.time()}")
"""

STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('grandchild up', flush=True); time.sleep(600)"])
tmp = sys.argv[1] + ".tmp"
open(tmp, "w").write(f"{os.getpid()} {child.pid}")
os.rename(tmp, sys.argv[1])
print("hook up", flush=True)
time.sleep(600)
"""


def records(out):
    files = sorted(f for f in os.listdir(out) if f.endswith(".json"))
    return [json.loads(open(os.path.join(out, f)).read()) for f in files]


def hooks_toml(*hooks) -> str:
    text = ""
    for h in hooks:
        text += "[[alerts.hooks]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in h.items())
    return text


RULES = """
[[alerts.rules]]
name = "backend-down"
metric = "backend_up"
op = "=="
threshold = 0
severity = "critical"
summary = "The backend is down"

[[alerts.rules]]
name = "hot"
metric = "gpu_temperature_celsius"
op = ">"
threshold = 80
severity = "warning"
summary = "GPU hot"
"""


def test_hook_gets_the_alert_on_stdin_and_in_env_when_firing_and_resolving(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    hook = write_hook(tmp_path, "record.py", RECORD)
    cfg = make_config(tmp_path, RULES + hooks_toml({"command": [str(hook), str(out), "--urgent"],
                                                    "rules": ["hot"]}))
    store = open_store(cfg)
    ev = Evaluator(cfg, store, host="orin-1")
    try:
        t = 1_790_000_000
        store.write(t, [sample("gpu_temperature_celsius", 84.5, gpu="gpu0"), sample("backend_up", 0)])
        ev.run(t)
        wait_for(lambda: len(records(out)) == 1 and ev.runner.idle(), what="the firing hook run")
        store.write(t + 10, [sample("gpu_temperature_celsius", 71.0, gpu="gpu0"), sample("backend_up", 0)])
        ev.run(t + 10)
        wait_for(lambda: len(records(out)) == 2 and ev.runner.idle(), what="the resolving hook run")
    finally:
        ev.close()
        store.close()
    fired, resolved = records(out)
    for rec, state, value in ((fired, "firing", 84.5), (resolved, "resolved", 71.0)):
        alert = json.loads(rec["stdin"])
        assert alert["rule"] == "hot" and alert["state"] == state and alert["severity"] == "warning"
        assert alert["value"] == value and alert["labels"] == {"gpu": "gpu0"}
        assert alert["since"] == "2026-09-21T14:13:20+00:00" and alert["summary"] == "GPU hot"
        assert alert["host"] == "orin-1"
        env = rec["env"]
        assert env["ISHOWD_ALERT_RULE"] == "hot" and env["ISHOWD_ALERT_STATE"] == state
        assert env["ISHOWD_ALERT_SEVERITY"] == "warning" and float(env["ISHOWD_ALERT_VALUE"]) == value
        assert json.loads(env["ISHOWD_ALERT_LABELS"]) == {"gpu": "gpu0"}
        assert env["ISHOWD_ALERT_SINCE"] == alert["since"] and env["ISHOWD_ALERT_SUMMARY"] == "GPU hot"
        assert env["ISHOWD_ALERT_HOST"] == "orin-1"
        assert rec["argv"] == ["--urgent"]
    assert json.loads(resolved["stdin"])["ended"] == "2026-09-21T14:13:30+00:00"
    # the critical backend-down alert fired too, but this hook only wants "hot"
    runs = hook_runs(cfg)
    assert [(r[1], r[2], r[3], r[4]) for r in runs] == [("record.py", 1, "ok", 0)] * 2
    assert runs[0][5].startswith("recorded 0")


def test_hooks_match_on_rules_and_severities(tmp_path):
    out = {n: tmp_path / n for n in ("all", "crit", "hot")}
    for d in out.values():
        d.mkdir()
    hook = write_hook(tmp_path, "record.py", RECORD)
    cfg = make_config(tmp_path, RULES + hooks_toml(
        {"name": "all", "command": [str(hook), str(out["all"])]},
        {"name": "crit", "command": [str(hook), str(out["crit"])], "severities": ["critical"]},
        {"name": "hot", "command": [str(hook), str(out["hot"])], "rules": ["hot"], "severities": ["warning"]}))
    store = open_store(cfg)
    ev = Evaluator(cfg, store)
    try:
        store.write(100, [sample("gpu_temperature_celsius", 90, gpu="gpu0"), sample("backend_up", 0)])
        ev.run(100)
        wait_for(lambda: len(hook_runs(cfg)) == 4 and ev.runner.idle(), what="four hook runs")
    finally:
        ev.close()
        store.close()
    rules = {n: sorted(json.loads(r["stdin"])["rule"] for r in records(d)) for n, d in out.items()}
    assert rules == {"all": ["backend-down", "hot"], "crit": ["backend-down"], "hot": ["hot"]}


def test_timeout_kills_the_whole_process_group_even_when_it_ignores_sigterm(tmp_path):
    pids = tmp_path / "pids"
    hook = write_hook(tmp_path, "stubborn.py", STUBBORN)
    start = time.monotonic()
    result = run_command([str(hook), str(pids)], b'{"rule": "x"}\n', dict(os.environ), 1.5,
                         kill_grace=0.4, max_lines=5)
    took = time.monotonic() - start
    assert result.status == "timeout" and result.exit_code is None
    # both ignored SIGTERM: the grace ran out and SIGKILL ended them
    assert 1.5 + 0.4 <= took < 1.5 + 0.4 + 5
    assert "hook up" in result.output.splitlines() and "grandchild up" in result.output.splitlines()
    hook_pid, grandchild = map(int, pids.read_text().split())
    wait_for(lambda: gone(hook_pid) and gone(grandchild), 5, "the hook and its grandchild to be gone")


def test_leftovers_of_a_hook_that_exited_are_ended(tmp_path):
    pid_file = tmp_path / "pid"
    hook = write_hook(tmp_path, "detach.py", f"""
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
open({str(pid_file)!r}, "w").write(str(child.pid))
print("sent")
""")
    result = run_command([str(hook)], b"{}", dict(os.environ), 20, kill_grace=0.3)
    assert result.status == "ok" and result.exit_code == 0 and result.output == "sent"
    wait_for(lambda: gone(int(pid_file.read_text())), 5, "the background child to be gone")


def test_output_is_cut_to_its_first_lines_and_exit_status_recorded(tmp_path):
    hook = write_hook(tmp_path, "chatty.py", "import sys\nfor i in range(200000):\n    print('line', i)\nsys.exit(3)\n")
    result = run_command([str(hook)], b"{}", dict(os.environ), 30, max_lines=4)
    assert result.status == "failed" and result.exit_code == 3
    assert result.output.splitlines() == ["line 0", "line 1", "line 2", "line 3"]


def test_argv_is_never_given_to_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    arg = f"$(touch {marker}); touch {marker} `touch {marker}`"
    result = run_command(["/bin/echo", arg], b"{}", dict(os.environ), 10)
    assert result.status == "ok" and result.output == arg
    assert not marker.exists()


def collect():
    got, lock = [], threading.Lock()

    def record(event_id, hook, attempt, result):
        with lock:
            got.append((event_id, hook.name, attempt, result.status, result.exit_code, result.started,
                        result.duration))
    return got, record


def test_a_failed_hook_is_retried_a_bounded_number_of_times_with_backoff(tmp_path):
    count = tmp_path / "count"
    flaky = write_hook(tmp_path, "flaky.py", f"""
import os, sys
p = {str(count)!r}
n = int(open(p).read()) + 1 if os.path.exists(p) else 1
open(p, "w").write(str(n))
sys.exit(0 if n >= 3 else 7)
""")
    got, record = collect()
    runner = HookRunner(record, workers=2, retry_delay=0.2)
    try:
        runner.submit(Hook("flaky", (str(flaky),), timeout=10, retries=2), {"rule": "r", "state": "firing"}, 1)
        runner.submit(Hook("never", (str(tmp_path / "missing"),), timeout=10, retries=1),
                      {"rule": "r", "state": "firing"}, 2)
        wait_for(lambda: len(got) == 5 and runner.idle(), 20, "five attempts")
    finally:
        runner.close()
    flaky_runs = [g for g in got if g[1] == "flaky"]
    assert [(g[2], g[3], g[4]) for g in flaky_runs] == [(1, "failed", 7), (2, "failed", 7), (3, "ok", 0)]
    # 0.2 s after the first failure, 0.4 s after the second
    gaps = [b[5] - (a[5] + a[6]) for a, b in zip(flaky_runs, flaky_runs[1:])]
    assert gaps[0] >= 0.2 - 0.02 and gaps[1] >= 0.4 - 0.02
    assert [(g[2], g[3]) for g in got if g[1] == "never"] == [(1, "error"), (2, "error")]


def test_runs_at_once_are_bounded_and_the_queue_too(tmp_path):
    out, release = tmp_path / "out", tmp_path / "release"
    out.mkdir()
    block = write_hook(tmp_path, "block.py", BLOCK)
    got, record = collect()
    runner = HookRunner(record, workers=2, queue=3)

    def hook(tag):
        return Hook(tag, (str(block), str(out), str(release), tag), timeout=60, retries=0)

    def started():
        return sorted(f for f in os.listdir(out) if f.startswith("start-"))
    try:
        assert runner.submit(hook("a"), {}, 1) and runner.submit(hook("b"), {}, 2)
        wait_for(lambda: len(started()) == 2, what="two runs to start")
        for tag in "cde":
            assert runner.submit(hook(tag), {}, 3)
        assert not runner.submit(hook("f"), {}, 4)        # three waiting: the queue is full
        assert [g[3] for g in got] == ["dropped"]
        # both workers are held by a and b, so c, d and e wait
        assert started() == ["start-a", "start-b"]
        release.write_text("go")
        wait_for(lambda: len(got) == 6 and runner.idle(), 30, "every run to finish")
    finally:
        release.write_text("go")
        runner.close()
    assert sorted(g[1] for g in got if g[3] == "ok") == ["a", "b", "c", "d", "e"]
    spans = [tuple(map(float, (out / f"end-{t}").read_text().split())) for t in "abcde"]
    most = max(sum(1 for s, e in spans if s <= point < e) for point, _ in spans)
    assert most == 2


def test_a_hanging_hook_never_delays_a_tick(tmp_path):
    out, release = tmp_path / "out", tmp_path / "release"
    out.mkdir()
    block = write_hook(tmp_path, "block.py", BLOCK)
    cfg = make_config(tmp_path, RULES + hooks_toml(
        {"command": [str(block), str(out), str(release), "x"], "timeout": "60s"}))
    store = open_store(cfg)
    ev = Evaluator(cfg, store)
    try:
        store.write(100, [sample("backend_up", 0)])
        t0 = time.monotonic()
        ev.run(100)
        assert time.monotonic() - t0 < 0.5
        wait_for(lambda: (out / "start-x").exists(), what="the hook to start")
        for t in range(110, 200, 10):   # the hook hangs; ticks go on, and resolving queues another run
            store.write(t, [sample("backend_up", 1 if t >= 150 else 0)])
            t0 = time.monotonic()
            ev.run(t)
            assert time.monotonic() - t0 < 0.5
        assert not (out / "end-x").exists()
    finally:
        release.write_text("go")
        ev.close()
        store.close()
    assert [(r[2], r[3]) for r in hook_runs(cfg)] == [(1, "ok"), (1, "ok")]


def test_retries_not_due_at_shutdown_are_recorded_as_dropped(tmp_path):
    got, record = collect()
    runner = HookRunner(record, workers=1, retry_delay=60)
    runner.submit(Hook("false", ("/bin/false",), timeout=5, retries=3), {}, 9)
    wait_for(lambda: len(got) == 1, what="the first attempt")
    runner.close(wait=0.5)
    assert [(g[2], g[3]) for g in got] == [(1, "failed"), (2, "dropped")]


@pytest.mark.parametrize("stdin_size", [0, 1 << 20])
def test_a_hook_that_never_reads_stdin_is_not_stuck(tmp_path, stdin_size):
    result = run_command(["/bin/true"], b"x" * stdin_size, dict(os.environ), 10)
    assert result.status == "ok"
    result = run_command([sys.executable, "-c", "import sys; sys.stdin.read()"], b"x" * stdin_size,
                         dict(os.environ), 10)
    assert result.status == "ok"


def test_stopping_ends_hooks_in_flight_after_their_grace_whatever_their_timeout(tmp_path):
    """Shutdown waited out a hook's timeout (37 s seen); now a run in flight gets the kill grace,
    then its whole group is ended and the run recorded as stopped; what waits is dropped."""
    pids = tmp_path / "pids"
    stubborn = write_hook(tmp_path, "stubborn.py", STUBBORN)
    got, record = collect()
    runner = HookRunner(record, workers=1, kill_grace=0.3)
    runner.submit(Hook("stubborn", (str(stubborn), str(pids)), timeout=300, retries=2), {}, 1)
    runner.submit(Hook("waiting", ("/bin/true",), timeout=5, retries=0), {}, 2)
    wait_for(pids.exists, what="the hook and its grandchild to start")
    hook_pid, grandchild = map(int, pids.read_text().split())
    t0 = time.monotonic()
    runner.close()
    took = time.monotonic() - t0
    assert took < 60, took  # far below the hook's 300 s timeout
    assert sorted((g[1], g[3]) for g in got) == [("stubborn", "stopped"), ("waiting", "dropped")]
    assert wait_for(lambda: gone(hook_pid) and gone(grandchild), what="the group to be gone")


def test_a_storm_of_alert_changes_is_summarised_not_logged_line_by_line(tmp_path, caplog):
    """50 series flapping every tick: every change is recorded, but the log gets a bounded
    number of lines and one summary of what it held back."""
    cfg = make_config(tmp_path, RULES, interval="1s")
    store = open_store(cfg)
    ev = Evaluator(cfg, store)
    clock = [0.0]
    ev.said.clock = lambda: clock[0]
    caplog.set_level(logging.INFO, logger="ishowd.alerts")
    try:
        for i in range(40):
            t = 1000 + i
            clock[0] = float(i)
            hot = 90.0 if i % 2 == 0 else 20.0
            store.write(t, [sample("gpu_temperature_celsius", hot, gpu=f"gpu{n}") for n in range(50)])
            ev.run(t)
        clock[0] = 61.0
        ev.run(1040)
    finally:
        ev.close()
        store.close()
    with db(cfg) as conn:
        events = conn.execute("SELECT count(*) FROM alert_events").fetchone()[0]
    assert events == 40 * 50  # every firing and resolving recorded
    lines = [r.getMessage() for r in caplog.records if r.name == "ishowd.alerts"]
    change_lines = [m for m in lines if m.startswith("alert hot{")]
    assert len(change_lines) == ev.said.burst
    (summary,) = [m for m in lines if "were not logged one by one" in m]
    assert summary.startswith(f"{events - ev.said.burst} more alert changes")
