"""etc/grafana/ishowd.json: valid Grafana JSON whose every query names only metrics ishowd serves.

``promql_metrics`` and ``unknown_metrics`` are also used on the Prometheus rules
(tests/test_prometheus_rules.py).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ishowd import catalog

DASHBOARD = Path(__file__).resolve().parent.parent / "etc" / "grafana" / "ishowd.json"

# PromQL's functions and aggregation operators (Prometheus 2.x): a name called that is not one
# of these is a typo, not a metric.
FUNCTIONS = frozenset("""
    abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp
    clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month
    deg delta deriv exp floor histogram_quantile holt_winters hour idelta increase irate label_join
    label_replace last_over_time ln log10 log2 max_over_time min_over_time minute month pi
    predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn sin sinh
    sort sort_desc sqrt stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp
    vector year
    avg bottomk count count_values group max min quantile stddev stdvar sum topk
""".split())
KEYWORDS = frozenset("and or unless bool by without on ignoring group_left group_right offset atan2 inf nan".split())
# Series Prometheus makes itself for every target it scrapes.
SCRAPE_SERIES = frozenset({"up"})
HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_TOKEN = re.compile(r"(?P<number>0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
                    r"|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?P<call>\s*\()?")


def promql_metrics(expr: str) -> set[str]:
    """The metric names an expression selects; ValueError on a call of something not a PromQL function.

    Label matchers, range and subquery brackets, by/without/on lists, offsets, numbers and
    Grafana's $variables are no metric names.
    """
    text = _STRING.sub('""', expr)
    text = _GRAFANA_VARIABLE.sub("1", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)  # `sum by (le) (...)`: sum is then called as it is
    text = _OFFSET.sub(" ", text)
    names = set()
    for m in _TOKEN.finditer(text):
        name = m.group("name")
        if name is None:
            continue
        if m.group("call"):
            if name not in FUNCTIONS:
                raise ValueError(f"{name}() is not a PromQL function (in {expr!r})")
        elif name.lower() not in KEYWORDS:
            names.add(name)
    return names


def unknown_metrics(names, registry) -> set[str]:
    """The names that ishowd's /metrics does not serve (a histogram's parts count as the histogram)."""
    # Until the registry declares a histogram, a declared base is taken for one.
    histograms_declared = any(m.kind == "histogram" for m in registry.values())
    out = set()
    for name in names:
        if name in registry or name in SCRAPE_SERIES:
            continue
        base = next((name[:-len(s)] for s in HISTOGRAM_PARTS if name.endswith(s)), None)
        if base in registry and (registry[base].kind == "histogram" or not histograms_declared):
            continue
        out.add(name)
    return out


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _panels(dash: dict):
    for panel in dash["panels"]:
        yield panel
        yield from panel.get("panels", ())  # a collapsed row holds its panels


def _exprs(dash: dict) -> list[tuple[str, str]]:
    """(where, expression) for every panel query and the instance variable's label_values() selector."""
    out = [(f"panel {p['title']!r}", t["expr"]) for p in _panels(dash) for t in p.get("targets", ())]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
            assert m, f"variable {var['name']}: {query!r} is not label_values(selector, label)"
            out.append((f"variable {var['name']!r}", m.group(1)))
    return out


def test_the_extractor_finds_metric_names_only():
    assert promql_metrics('rate(tts_rtf_sum{source="api"}[1h]) / rate(tts_rtf_count{source="api"}[1h]) > 0.35') \
        == {"tts_rtf_sum", "tts_rtf_count"}
    assert promql_metrics('histogram_quantile(0.95, sum by (le, engine) (rate(tts_rtf_bucket{instance="$instance", '
                          'source="api"}[$__rate_interval])))') == {"tts_rtf_bucket"}
    assert promql_metrics("memory_available_bytes < 5e9") == {"memory_available_bytes"}
    assert promql_metrics("delta(backend_rss_bytes[24h] offset 1d) > 50e6 and on (instance) up == 1") \
        == {"backend_rss_bytes", "up"}
    assert promql_metrics('count(ishowd_job_success{job=~"a|b"} == 0) without (job) or vector(0)') \
        == {"ishowd_job_success"}
    assert promql_metrics("time() - ishowd_job_last_run_timestamp_seconds") == {"ishowd_job_last_run_timestamp_seconds"}


def test_a_bogus_metric_or_function_is_caught():
    registry = catalog.registry()
    assert unknown_metrics(promql_metrics('gpu_temprature_celsius{gpu="gpu0"} > 80'), registry) \
        == {"gpu_temprature_celsius"}
    assert unknown_metrics(promql_metrics("rate(backend_log_errors_total_bucket[5m])"), registry) \
        == {"backend_log_errors_total_bucket"}
    assert unknown_metrics(promql_metrics("gpu_temperature_celsius > 80"), registry) == set()
    with pytest.raises(ValueError, match="rat"):
        promql_metrics("rat(backend_log_errors_total[5m])")


def test_every_query_names_only_metrics_ishowd_serves():
    registry = catalog.registry()
    exprs = _exprs(_dashboard())
    bad = {where + ": " + expr: sorted(unknown_metrics(promql_metrics(expr), registry)) for where, expr in exprs}
    assert {k: v for k, v in bad.items() if v} == {}
    assert all(promql_metrics(expr) for _, expr in exprs), "a query that selects no metric"


def test_the_dashboard_is_grafana_json_with_its_variables():
    dash = _dashboard()
    assert dash["schemaVersion"] >= 36 and dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["instance"]["type"] == "query"
    assert variables["instance"]["datasource"]["uid"] == "${datasource}"
    ids = [p["id"] for p in _panels(dash)]
    assert len(ids) == len(set(ids))
    cells = set()
    for p in _panels(dash):
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"panel {p['title']!r} overlaps another"
        cells |= mine
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        for t in p["targets"]:
            # one box among many: every query keeps to the chosen instance
            assert 'instance="$instance"' in t["expr"], f"{p['title']}: {t['expr']}"
            assert t["datasource"]["uid"] == "${datasource}"


def test_rtf_panels_draw_the_targets():
    from ishowd.backend.plot import TARGETS
    targets = sorted(value for value, _label, _colour in TARGETS)
    rtf_panels = [p for p in _panels(_dashboard())
                  if any(re.search(r"\b(tts|benchmark)_rtf", t["expr"]) for t in p["targets"])]
    assert len(rtf_panels) >= 3
    for p in rtf_panels:
        steps = [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"] if s["value"] is not None]
        assert steps == targets, p["title"]
        if p["type"] == "timeseries":
            assert p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] in ("line", "dashed",
                                                                                          "line+area", "dashed+area")


def test_the_rtf_percentiles_come_from_the_histogram():
    exprs = [t["expr"] for p in _panels(_dashboard()) for t in p["targets"]]
    quantiles = {float(m.group(1)) for e in exprs
                 for m in [re.match(r"histogram_quantile\(([\d.]+),.*\bby \(le\b.*\btts_rtf_bucket\b", e)] if m}
    assert quantiles >= {0.5, 0.95}
