"""Rule and hook keys: a bad rule fails at start with exit 78, naming the rule; the default rule set."""
from __future__ import annotations

import subprocess

import pytest

from alerts_helpers import VENV_BIN
from ishowd import catalog
from ishowd.alerts.rules import hooks_of, rules_of
from ishowd.config import ConfigError

GOOD = """
[[alerts.rules]]
name = "gpu-hot"
metric = "gpu_temperature_celsius"
op = ">"
threshold = 80
for = "1m"
severity = "critical"
"""


def load(text: str):
    return catalog.loads_config(text, "/etc/ishowd/ishowd.toml")


@pytest.mark.parametrize("change, key, words", [
    ('metric = "gpu_temprature_celsius"', "[[alerts.rules]] gpu-hot: metric", "unknown metric 'gpu_temprature_celsius'"),
    ('op = "=>"', "[[alerts.rules]] gpu-hot: op", "one of '>'"),
    ('for = "1 minute"', "[[alerts.rules]] gpu-hot: for", "duration"),
    ('window = "soon"\naggregate = "mean"', "[[alerts.rules]] gpu-hot: window", "duration"),
    ('window = "1h"', "[[alerts.rules]] gpu-hot: aggregate", "window needs an aggregate"),
    ('aggregate = "median"\nwindow = "1h"', "[[alerts.rules]] gpu-hot: aggregate", "one of 'mean'"),
    ('aggregate = "max"', "[[alerts.rules]] gpu-hot: window", "needs a window"),
    ('labels = {zone = "gpu-thermal"}', "[[alerts.rules]] gpu-hot: labels", "has no label zone"),
    ('labels = {gpu = 0}', "[[alerts.rules]] gpu-hot: labels", "table of strings"),
    ('severity = "page"', "[[alerts.rules]] gpu-hot: severity", "one of 'info'"),
    ('threshold = "80"', "[[alerts.rules]] gpu-hot: threshold", "a number"),
    ('window = "30d"\naggregate = "max"', "[[alerts.rules]] gpu-hot: window", "raw_retention"),
    ('treshold = 3', "[[alerts.rules]] gpu-hot: treshold", "unknown key"),
])
def test_a_bad_rule_is_named(change, key, words):
    text = GOOD.replace('op = ">"\n', "") if change.startswith("op") else GOOD
    text = text.replace('for = "1m"\n', "") if change.startswith("for") else text
    text = text.replace('threshold = 80\n', "") if change.startswith("threshold") else text
    text = text.replace('severity = "critical"\n', "") if change.startswith("severity") else text
    if change.startswith("metric"):
        text = text.replace('metric = "gpu_temperature_celsius"\n', "")
    with pytest.raises(ConfigError) as err:
        load(text + change + "\n")
    assert err.value.key == key
    assert words in str(err.value) and "/etc/ishowd/ishowd.toml" in str(err.value)


def test_missing_keys_and_duplicate_names():
    with pytest.raises(ConfigError) as err:
        load('[[alerts.rules]]\nname = "x"\nmetric = "backend_up"\nop = "=="\n')
    assert err.value.key == "[[alerts.rules]] x: threshold"
    with pytest.raises(ConfigError) as err:
        load(GOOD + GOOD)
    assert err.value.key == "[[alerts.rules]] gpu-hot: name"


def test_bad_hooks_are_named():
    with pytest.raises(ConfigError) as err:
        load(GOOD + '[[alerts.hooks]]\ncommand = "notify-send hot"\n')
    assert err.value.key == "[[alerts.hooks]] #1: command" and "argv" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load(GOOD + '[[alerts.hooks]]\nname = "pager"\ncommand = ["/bin/true"]\nrules = ["gpu-hott"]\n')
    assert err.value.key == "[[alerts.hooks]] pager: rules" and "gpu-hott" in str(err.value)
    with pytest.raises(ConfigError) as err:
        load(GOOD + '[[alerts.hooks]]\ncommand = ["/bin/true"]\ntimeout = "forever"\n')
    assert err.value.key == "[[alerts.hooks]] #1: timeout"
    with pytest.raises(ConfigError) as err:
        load(GOOD + '[[alerts.hooks]]\ncommand = ["/bin/true"]\nseverities = ["urgent"]\n')
    assert err.value.key == "[[alerts.hooks]] #1: severities"
    hooks = hooks_of(load(GOOD + '[[alerts.hooks]]\ncommand = ["/usr/local/bin/notify", "--urgent"]\n'))
    assert [(h.name, h.command, h.timeout, h.retries) for h in hooks] == [
        ("notify", ("/usr/local/bin/notify", "--urgent"), 10.0, 2)]


def test_the_daemon_exits_78_naming_the_rule(tmp_path):
    path = tmp_path / "ishowd.toml"
    path.write_text(f'[storage]\npath = "{tmp_path / "s.db"}"\n' + GOOD.replace('op = ">"', 'op = "gt"'))
    for argv in ([str(VENV_BIN / "ishowd"), "run", "--once", "--config", str(path)],
                 [str(VENV_BIN / "ishowctl"), "--config", str(path), "alerts"]):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 78, proc.stderr
        assert f"{path}: [[alerts.rules]] gpu-hot: op" in proc.stderr
    assert not (tmp_path / "s.db").exists()


DEFAULT_NAMES = ["gpu-hot", "gpu-warm", "gpu-unlocked", "rtf-slow", "backend-down", "memory-low",
                 "backend-memory-growth", "backend-log-errors", "backend-compile-fallback", "job-failed",
                 "job-overdue"]


def test_the_default_rule_set():
    rules = {r.name: r for r in rules_of(load(""))}
    assert list(rules) == DEFAULT_NAMES
    got = {n: (r.metric, r.op, r.threshold, r.for_s, r.severity, r.window, r.aggregate, r.labels)
           for n, r in rules.items()}
    assert got == {
        "gpu-hot": ("gpu_temperature_celsius", ">", 80, 60, "critical", None, None, {}),
        "gpu-warm": ("gpu_temperature_celsius", ">", 75, 60, "warning", None, None, {}),
        "gpu-unlocked": ("gpu_frequency_locked", "==", 0, 300, "warning", None, None, {}),
        "rtf-slow": ("tts_rtf", ">", 0.35, 0, "warning", 3600, "mean", {"source": "api"}),
        "backend-down": ("backend_up", "==", 0, 120, "critical", None, None, {}),
        "memory-low": ("memory_available_bytes", "<", 5e9, 60, "warning", None, None, {}),
        "backend-memory-growth": ("backend_rss_bytes", ">", 50e6, 0, "warning", 86400, "increase", {}),
        "backend-log-errors": ("backend_log_errors_total", ">", 0, 0, "info", 600, "increase", {}),
        "backend-compile-fallback": ("backend_compile_fallbacks_total", ">", 0, 0, "warning", 86400, "increase", {}),
        "job-failed": ("ishowd_job_success", "==", 0, 0, "warning", None, None, {}),
        "job-overdue": ("ishowd_job_overdue", "==", 1, 0, "warning", None, None, {}),
    }
    assert "sudo jetson_clocks" in rules["gpu-unlocked"].summary
    assert all(r.summary for r in rules.values())


def test_own_rules_replace_the_defaults_and_an_empty_list_turns_them_off():
    assert [r.name for r in rules_of(load('[sampling]\ninterval = "5s"\n'))] == DEFAULT_NAMES
    assert [r.name for r in rules_of(load(GOOD))] == ["gpu-hot"]
    assert rules_of(load("[alerts]\nrules = []\n")) == []
    assert rules_of(catalog.load_config(None)) == rules_of(load(""))


def test_etc_example_and_readme_document_every_default_rule():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    example = load((root / "etc" / "ishowd.toml").read_text(encoding="utf-8").replace("/var/lib/ishowd", "/tmp"))
    assert "alerts.rules" in example.arrays      # spelled out in the file, not inherited
    assert rules_of(example) == rules_of(load(""))
    readme = (root / "README.md").read_text(encoding="utf-8")
    for name in DEFAULT_NAMES:
        assert f"`{name}`" in readme
