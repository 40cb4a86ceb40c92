"""Alert rules and hooks: their config keys, parsing and validation.

A rule judges one metric, series by series::

    [[alerts.rules]]
    name = "gpu-hot"
    metric = "gpu_temperature_celsius"
    labels = {gpu = "gpu0"}          # optional: only these series
    op = ">"
    threshold = 80
    for = "1m"                       # optional: must hold this long before firing
    window = "1h"                    # optional, with aggregate: judge a statistic
    aggregate = "mean"               #   over the window instead of the latest value
    severity = "critical"
    summary = "GPU above 80 °C"

The built-in rule set lives in ``defaults.toml``. A config file that has no
``[[alerts.rules]]`` keeps it; a file that defines any rule replaces it as a
whole (``[alerts] rules = []`` turns every rule off). Every problem is a
``ConfigError`` naming the rule, so ``ishowd`` exits 78 at start.
"""
from __future__ import annotations

import operator
import os
from typing import Callable, Mapping, NamedTuple, Optional

from ..config import BUILTIN, ConfigError, Key, defaults_text, format_duration, loads, shorten, shown
from ..metrics import NO_LABELS

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}
AGGREGATES = ("mean", "max", "min", "p95", "count", "increase")
SEVERITIES = ("info", "warning", "critical")
# Nagios states by severity: info never raises the check above OK.
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def _string_table(value) -> Optional[str]:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return 'a table of strings such as {gpu = "gpu0"}'
    return None


def _one_line(value: str) -> Optional[str]:
    """Names are shown in tables and logs: a control character would break the line."""
    return None if value.isprintable() else "a name without control characters (newlines, tabs)"


def _severity_list(value) -> Optional[str]:
    bad = [v for v in value if v not in SEVERITIES]
    return f"a list of severities ({', '.join(SEVERITIES)})" if bad else None


KEYS = {"alerts": {
    "hook_workers": Key("int", 2, "how many hook commands may run at once", min=1, max=64),
    "hook_queue": Key("int", 100, "hook runs that may wait for a worker; beyond this a run is dropped "
                      "(and recorded as dropped)", min=1, max=100_000),
    # with at most 10 retries the last waits at most 512 x this: 21 days, inside what a
    # threading wait takes
    "hook_retry_delay": Key("duration", "5s", "wait before the first retry of a failed hook; doubles "
                            "with each further retry", min=0, max=3600),
    "hook_kill_grace": Key("duration", "2s", "after a hook's timeout its process group gets SIGTERM, "
                           "then SIGKILL after this grace", min=0, max=60),
    # a hook's output is kept up to 8 KiB (process.OUTPUT_BYTES): more lines could not be there
    "hook_output_lines": Key("int", 20, "how many first lines of a hook's output are recorded", min=0, max=1000),
    "check_stale_intervals": Key("int", 3, "`ishowctl check` says UNKNOWN when the daemon has not "
                                 "written for this many sampling intervals", min=1, max=100),
}}

TABLES = {"alerts.rules": {
    "name": Key("str", None, "the rule's name, unique (shown in status, alerts, check, hooks)", required=True,
                check=_one_line),
    "metric": Key("str", None, "the metric judged (see the metric table)", required=True),
    "labels": Key("table", None, "only series with these label values", check=_string_table),
    "op": Key("str", None, "comparison with the threshold", choices=tuple(OPS), required=True),
    "threshold": Key("float", None, "the value compared with", required=True),
    # states outlive restarts, so a condition may be judged over as long as samples are kept:
    # ten years, [storage]'s longest retention (rules_of holds a window to raw_retention)
    "for": Key("duration", None, "how long the condition must hold before the alert fires (default 0s)",
               min=0, max=3650 * 86400),
    "window": Key("duration", None, "judge a statistic over this window (with aggregate)", min=1,
                  max=3650 * 86400),
    "aggregate": Key("str", None, "the statistic over the window", choices=AGGREGATES),
    "severity": Key("str", None, "info, warning or critical (default warning)", choices=SEVERITIES),
    "summary": Key("str", None, "a sentence for people: shown in status, given to hooks"),
},

"alerts.hooks": {
    "name": Key("str", None, "a name for the hook in `ishowctl alerts --all` (default: the command's file name)",
                check=_one_line),
    "command": Key("argv", None, "argv of the command (never run through a shell)", required=True),
    "timeout": Key("duration", None, "kill the hook's whole process group after this (default 10s)",
                   min=0.001, max=3600),
    "retries": Key("int", None, "how often a failed run is retried (default 2)", min=0, max=10),
    "rules": Key("strlist", None, "only alerts of these rules (default: all)"),
    "severities": Key("strlist", None, "only alerts of these severities (default: all)", check=_severity_list),
}}


class Rule(NamedTuple):
    name: str
    metric: str
    op: str
    threshold: float
    severity: str = "warning"
    for_s: float = 0.0
    labels: Mapping[str, str] = NO_LABELS
    window: Optional[float] = None
    aggregate: Optional[str] = None
    summary: str = ""
    kind: str = "gauge"             # the metric's kind: "increase" differs for counters

    def holds(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)

    def matches(self, labels: dict) -> bool:
        return all(labels.get(k) == v for k, v in self.labels.items())

    def describe(self) -> str:
        """``mean(tts_rtf{source=api}[1h]) > 0.35 for 5m``"""
        sel = self.metric + ("{" + ",".join(f"{k}={v}" for k, v in self.labels.items()) + "}" if self.labels else "")
        if self.window:
            sel = f"{self.aggregate}({sel}[{format_duration(self.window)}])"
        text = f"{sel} {self.op} {number(self.threshold)}"
        return text + (f" for {format_duration(self.for_s)}" if self.for_s else "")


class Hook(NamedTuple):
    name: str
    command: tuple
    timeout: float = 10.0
    retries: int = 2
    rules: tuple = ()
    severities: tuple = ()

    def wants(self, rule: str, severity: str) -> bool:
        return (not self.rules or rule in self.rules) and (not self.severities or severity in self.severities)


def number(v: float) -> str:
    """A threshold or value as people write it: 80, 0.35, 5000000000."""
    if v is None:
        return "-"
    if float(v).is_integer() and abs(v) < 1e16:
        return str(int(v))
    return f"{v:.6g}"


def _rule_from(sec, source: str, registry: dict) -> Rule:
    name = sec["name"]
    where = f"[[alerts.rules]] {shorten(name)}"
    if not name.strip():
        raise ConfigError(source, f"{where}: name", "a non-empty name", name)
    metric = registry.get(sec["metric"])
    if metric is None:
        known = ", ".join(sorted(registry))
        raise ConfigError(source, f"{where}: metric", "a known metric", sec["metric"],
                          detail=f"unknown metric {shown(sec['metric'])} (known: {known})")
    labels = dict(sec["labels"] or {})
    unknown = sorted(set(labels) - set(metric.labels))
    if unknown:
        have = ", ".join(metric.labels) or "none"
        raise ConfigError(source, f"{where}: labels", "", labels,
                          detail=f"{metric.name} has no label {', '.join(map(shorten, unknown[:3]))}"
                                 f"{' and more' if len(unknown) > 3 else ''} (its labels: {have})")
    threshold = sec["threshold"]
    window, aggregate = sec["window"], sec["aggregate"]
    if aggregate is not None and window is None:
        raise ConfigError(source, f"{where}: window", "", detail=f"aggregate = {aggregate!r} needs a window such as \"1h\"")
    if window is not None and aggregate is None:
        raise ConfigError(source, f"{where}: aggregate", "", detail="window needs an aggregate: one of "
                          + ", ".join(AGGREGATES))
    return Rule(name=name, metric=metric.name, op=sec["op"], threshold=threshold,
                severity=sec["severity"] or "warning", for_s=sec["for"] or 0.0, labels=labels,
                window=window, aggregate=aggregate, summary=sec["summary"] or "", kind=metric.kind)


def _default_rule_sections(schema):
    return loads(defaults_text(), BUILTIN, schema).array("alerts.rules")


def rules_of(cfg) -> list[Rule]:
    """The rules in force: validated (``ConfigError`` naming the rule on any problem)."""
    out, seen = [], set()
    for sec in cfg.array("alerts.rules"):
        rule = _rule_from(sec, cfg.source, cfg.metrics)
        if rule.name in seen:
            raise ConfigError(cfg.source, f"[[alerts.rules]] {shorten(rule.name)}: name", "unique rule names",
                              detail=f"a second rule is named {shown(rule.name)}")
        seen.add(rule.name)
        if rule.window is not None and rule.window > cfg.storage.raw_retention:
            raise ConfigError(cfg.source, f"[[alerts.rules]] {shorten(rule.name)}: window", "",
                              detail=f"a window of {format_duration(rule.window)} is longer than [storage] "
                                     f"raw_retention ({format_duration(cfg.storage.raw_retention)}): it cannot "
                                     "be judged from raw samples")
        out.append(rule)
    return out


def hooks_of(cfg, rule_names: Optional[set] = None) -> list[Hook]:
    out = []
    for index, sec in enumerate(cfg.array("alerts.hooks")):
        name = sec["name"] or os.path.basename(sec["command"][0])
        where = f"[[alerts.hooks]] {shorten(sec['name']) if sec['name'] else '#%d' % (index + 1)}"
        rules = tuple(sec["rules"] or ())
        if rule_names is not None:
            unknown = [r for r in rules if r not in rule_names]
            if unknown:
                raise ConfigError(cfg.source, f"{where}: rules", "", unknown,
                                  detail=f"no rule named {', '.join(map(shown, unknown[:3]))}"
                                         f"{' and more' if len(unknown) > 3 else ''}")
        out.append(Hook(name=name, command=tuple(sec["command"]),
                        timeout=sec["timeout"] if sec["timeout"] is not None else 10.0,
                        retries=sec["retries"] if sec["retries"] is not None else 2,
                        rules=rules, severities=tuple(sec["severities"] or ())))
    return out


def _check(cfg) -> None:
    """CROSS_CHECK: fill in the default rules when the file has none, then validate everything."""
    if "alerts.rules" not in cfg.arrays and cfg.source != BUILTIN:
        cfg.arrays["alerts.rules"] = _default_rule_sections(cfg.schema)
    rules = rules_of(cfg)
    hooks_of(cfg, {r.name for r in rules})


CHECKS = (_check,)
