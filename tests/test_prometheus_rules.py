"""etc/prometheus/ishowd.rules.yml: the default alert rules, twin for twin, checked and unit-tested by promtool."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ishowd import catalog
from ishowd.alerts.rules import rules_of
from test_grafana_dashboard import promql_metrics, unknown_metrics

PROMETHEUS = Path(__file__).resolve().parent.parent / "etc" / "prometheus"
RULES = PROMETHEUS / "ishowd.rules.yml"
RULES_TESTS = PROMETHEUS / "ishowd.rules.test.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian package prometheus)")

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
# the ishowd aggregate each Prometheus function stands for
_AGGREGATE_FUNCTIONS = {"mean": ("avg_over_time",), "max": ("max_over_time",), "min": ("min_over_time",),
                        "count": ("count_over_time",), "increase": ("increase", "delta")}


_KEY = re.compile(r"([\w.-]+):(?:\s+|$)")
_FLOW_ENTRY = re.compile(r'\s*([\w.-]+):\s*("(?:\\.|[^"\\])*"|[^,}"]*?)\s*(,|\}$)')


def read_block_yaml(text: str):
    """The YAML the rules files are written in: block mappings and sequences, one-line flow
    mappings of scalars, plain and quoted scalars, the empty list.

    Anything else (other flow sequences, block scalars, anchors, tags) is refused, so the files cannot
    drift into a form this reads wrongly.
    """
    lines = []
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            lines.append([len(raw) - len(raw.lstrip(" ")), stripped, number])

    def scalar(value: str, number: int):
        if value.startswith('"'):
            return json.loads(value)
        if value.startswith("'"):
            assert value.endswith("'"), f"line {number}: unterminated quote"
            return value[1:-1].replace("''", "'")
        if value == "[]":
            return []
        if value.startswith("{"):
            entries, at = {}, 1
            while at < len(value):
                m = _FLOW_ENTRY.match(value, at)
                if m is None:
                    raise ValueError(f"line {number}: {value!r} is not a flow mapping of scalars")
                entries[m[1]] = scalar(m[2], number) if m[2] else None
                at = m.end()
            return entries
        if value[0] in "[|>&*!%@`":
            raise ValueError(f"line {number}: {value!r} is not a plain or quoted scalar")
        return value

    def block(i: int, indent: int):
        if lines[i][1].startswith("- "):
            items = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                content = lines[i][1][2:].lstrip()
                if not _KEY.match(content):
                    items.append(scalar(content, lines[i][2]))
                    i += 1
                    continue
                # "- key: value" opens a mapping two columns in
                lines[i][0], lines[i][1] = indent + 2, content
                item, i = block(i, indent + 2)
                items.append(item)
            return items, i
        mapping = {}
        while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("- "):
            _, content, number = lines[i]
            m = _KEY.match(content)
            assert m and m[1] not in mapping, f"line {number}: {content!r}"
            key, value = m[1], content[m.end():]
            i += 1
            if value:
                mapping[key] = scalar(value, number)
            else:
                assert i < len(lines) and lines[i][0] >= indent, f"line {number}: {key} has no value"
                mapping[key], i = block(i, lines[i][0])
        return mapping, i

    doc, end = block(0, lines[0][0])
    assert end == len(lines), f"line {lines[end][2]}: out of place"
    return doc


def duration_seconds(text: str) -> float:
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    assert "".join(n + u for n, u in parts) == text, f"{text!r} is not a Prometheus duration"
    return float(sum(int(n) * _DURATION_UNITS[u] for n, u in parts))


def _prometheus_rules() -> list[dict]:
    doc = read_block_yaml(RULES.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _default_rules():
    return rules_of(catalog.loads_config(""))


def test_the_reader_reads_what_yaml_means():
    doc = read_block_yaml('a:\n  - b: 1\n    c: "x: \\"y\\""\n  - b: \'it\'\'s\'\n  - plain.yml\n'
                          'd:\n  e: {f: g, h: "i, j", k: []}\n')
    assert doc == {"a": [{"b": "1", "c": 'x: "y"'}, {"b": "it's"}, "plain.yml"],
                   "d": {"e": {"f": "g", "h": "i, j", "k": []}}}
    with pytest.raises(ValueError):
        read_block_yaml("a: [b, c]\n")


def test_every_default_rule_has_its_twin_and_no_other():
    assert [r["alert"] for r in _prometheus_rules()] == [r.name for r in _default_rules()]


@pytest.mark.parametrize("rule", _default_rules(), ids=lambda r: r.name)
def test_the_twin_judges_alike(rule):
    twin = {r["alert"]: r for r in _prometheus_rules()}[rule.name]
    expr = twin["expr"]
    condition = re.fullmatch(r"(?P<value>.+?)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<threshold>[-+]?[\d.]+(?:e[-+]?\d+)?)",
                             expr)
    assert condition, f"{rule.name}: {expr!r} does not end in a comparison with a number"
    assert condition["op"] == rule.op
    assert float(condition["threshold"]) == rule.threshold
    assert duration_seconds(twin.get("for", "0s")) == rule.for_s
    assert twin["labels"] == {"severity": rule.severity}
    assert twin["annotations"]["summary"] == rule.summary
    assert twin["annotations"]["description"]

    value = condition["value"]
    names = promql_metrics(value)
    assert {n.removesuffix("_sum").removesuffix("_count") for n in names} == {rule.metric}, expr
    for name in names:
        for key, wanted in rule.labels.items():
            assert re.search(rf'\b{name}\{{[^}}]*\b{key}="{re.escape(wanted)}"', value), f"{name} lacks {key}"
    windows = re.findall(r"\[([^\]]+)\]", value)
    if rule.window is None:
        assert windows == [] and names == {rule.metric}, expr
        return
    assert windows and all(duration_seconds(w) == rule.window for w in windows), expr
    if names == {rule.metric + "_sum", rule.metric + "_count"}:
        # the mean of a histogram's observations: its sum's rate over its count's
        assert rule.aggregate == "mean"
        assert re.fullmatch(rf"rate\({rule.metric}_sum\{{[^}}]*\}}\[[^\]]+\]\) / "
                            rf"rate\({rule.metric}_count\{{[^}}]*\}}\[[^\]]+\]\)", value), expr
        return
    function = re.match(r"(\w+)\(", value)
    assert function and function[1] in _AGGREGATE_FUNCTIONS[rule.aggregate], expr
    if rule.aggregate == "increase":
        # increase() reads every fall as a counter reset: right for a counter, wrong for a gauge
        assert function[1] == ("increase" if rule.kind == "counter" else "delta"), expr


def test_every_expression_names_only_metrics_ishowd_serves():
    registry = catalog.registry()
    bad = {r["alert"]: sorted(unknown_metrics(promql_metrics(r["expr"]), registry)) for r in _prometheus_rules()}
    assert {k: v for k, v in bad.items() if v} == {}


def _promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)


@needs_promtool
def test_promtool_checks_the_rules():
    done = _promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_default_rules())} rules found" in done.stdout


@needs_promtool
def test_promtool_unit_tests_pass():
    done = _promtool("test", "rules", RULES_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_rule_has_unit_tests_that_fire_it_and_keep_it_quiet():
    doc = read_block_yaml(RULES_TESTS.read_text(encoding="utf-8"))
    assert doc["rule_files"] == [RULES.name]
    fired, quiet = set(), set()
    for test in doc["tests"]:
        for case in test.get("alert_rule_test", ()):
            (fired if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {r.name for r in _default_rules()}
    assert fired == names and quiet == names
