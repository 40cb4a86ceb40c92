"""The rule engine against brute-force expectations over recorded series in a real store.

Series are written through ``Store.write`` exactly as the daemon and log
ingestion write them (ticks, per-request samples stamped in the past, late
arrivals, gaps, counter resets), sealed into chunks as hours pass, and
judged by the ``Evaluator`` after every tick. The expected state and events
are recomputed from scratch each tick by re-reading every series from the
store file (tests/alerts_helpers.BruteJudge).
"""
from __future__ import annotations

import json
import math
import random

import pytest

from alerts_helpers import (BruteJudge, counter_kind, db, labels_key, make_config, open_store, sample,
                            series_samples)
from ishowd.alerts.engine import Window, percentile
from ishowd.alerts.evaluator import Evaluator

INTERVAL = 30
STALE = 90  # max(3 × interval, 90 s)

RULES = [
    dict(name="hot", metric="gpu_temperature_celsius", op=">", threshold=80, **{"for": 60}, severity="critical"),
    dict(name="hot-now", metric="gpu_temperature_celsius", op=">=", threshold=79, severity="warning"),
    dict(name="cold", metric="gpu_temperature_celsius", labels={"gpu": "gpu1"}, op="<", threshold=75.5,
         **{"for": 90}),
    dict(name="tmax", metric="gpu_temperature_celsius", window=300, aggregate="max", op=">", threshold=84,
         **{"for": 30}),
    dict(name="tmin", metric="gpu_temperature_celsius", window=120, aggregate="min", op="<=", threshold=72),
    dict(name="rtf-mean", metric="tts_rtf", labels={"source": "api"}, window=600, aggregate="mean", op=">",
         threshold=0.405),
    dict(name="rtf-p95", metric="tts_rtf", window=900, aggregate="p95", op=">", threshold=0.555, **{"for": 60}),
    dict(name="rtf-count", metric="tts_rtf", window=300, aggregate="count", op="<", threshold=2, **{"for": 60}),
    dict(name="err", metric="backend_log_errors_total", window=300, aggregate="increase", op=">", threshold=0),
    dict(name="err3", metric="backend_log_errors_total", window=600, aggregate="increase", op=">=", threshold=3,
         **{"for": 60}),
    dict(name="rss", metric="backend_rss_bytes", window=1800, aggregate="increase", op=">", threshold=50e6),
    dict(name="up", metric="backend_up", op="==", threshold=0, **{"for": 120}, severity="critical"),
    dict(name="util-mean", metric="gpu_temperature_celsius", window=3600, aggregate="mean", op="!=",
         threshold=80),
]


def rules_toml(rules) -> str:
    out = []
    for r in rules:
        out.append("[[alerts.rules]]")
        for k, v in r.items():
            if k in ("for", "window"):
                out.append(f'{k} = "{v}s"')
            elif k == "labels":
                out.append("labels = {" + ", ".join(f'{a} = "{b}"' for a, b in v.items()) + "}")
            elif isinstance(v, str):
                out.append(f'{k} = "{v}"')
            else:
                out.append(f"{k} = {v!r}")
    return "\n".join(out) + "\n"


class Recorder:
    """Generates one plausible, nasty history: flapping, gaps, late and duplicate samples, resets."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.temp = {"gpu0": 78.0, "gpu1": 76.0}
        self.flap = {"gpu0": 0, "gpu1": 0}
        self.gap = {}
        self.errors = 0.0
        self.rss = 2.0e9
        self.leak = 0
        self.down = 0

    def absent(self, key: str, p: float = 0.06) -> bool:
        if self.gap.get(key, 0) > 0:
            self.gap[key] -= 1
            return True
        if self.rng.random() < 0.02:
            self.gap[key] = self.rng.randint(2, 8)   # 60-240 s: longer than the stale limit
            return True
        return self.rng.random() < p

    def tick(self, t: int) -> tuple[list, list]:
        rng = self.rng
        batch, late = [], []
        for gpu in ("gpu0", "gpu1"):
            if self.flap[gpu] > 0:
                self.flap[gpu] -= 1
                self.temp[gpu] = 79.5 if self.temp[gpu] > 80 else 80.5
            else:
                if rng.random() < 0.05:
                    self.flap[gpu] = rng.randint(3, 12)
                self.temp[gpu] = min(90.0, max(68.0, self.temp[gpu] + rng.choice([-2, -1, -0.5, 0, 0.5, 1, 2])))
            if not self.absent(gpu):
                batch.append(sample("gpu_temperature_celsius", self.temp[gpu], gpu=gpu))
        for voice in ("v1", "v2"):
            for source in ("api", "chat"):
                for _ in range(rng.choice([0, 0, 1, 1, 2])):
                    ts = t - rng.randint(0, INTERVAL - 1)
                    batch.append(sample("tts_rtf", round(rng.uniform(0.2, 0.65), 2), ts, engine="f5",
                                        voice=voice, source=source))
                if rng.random() < 0.04:  # log ingestion catching up: requests from the last 25 minutes
                    for _ in range(rng.randint(1, 6)):
                        ts = t - rng.randint(INTERVAL, 1500)
                        late.append(sample("tts_rtf", round(rng.uniform(0.2, 0.9), 2), ts, engine="f5",
                                           voice=voice, source=source))
        r = rng.random()
        if r < 0.02:
            self.errors = float(rng.randint(0, 2))      # the backend restarted: its log was truncated
        elif r < 0.12:
            self.errors += rng.randint(1, 3)
        if not self.absent("errors", 0.04):
            batch.append(sample("backend_log_errors_total", self.errors, level="ERROR"))
        if self.leak > 0:
            self.leak -= 1
            self.rss += 2.5e6
        elif rng.random() < 0.03:
            self.leak = rng.randint(10, 60)
        self.rss += rng.choice([-4e6, -1e6, 0, 1e6, 4e6])
        if rng.random() < 0.01:
            self.rss = 1.5e9
        if not self.absent("rss", 0.03):
            batch.append(sample("backend_rss_bytes", self.rss))
        if self.down > 0:
            self.down -= 1
        elif rng.random() < 0.04:
            self.down = rng.randint(2, 9)
        if not self.absent("up", 0.03):
            batch.append(sample("backend_up", 0.0 if self.down else 1.0))
        return batch, late


def observed(cfg) -> tuple[dict, list]:
    with db(cfg) as conn:
        states = {(r[0], r[1]): (r[2], r[3] / 1e6) for r in conn.execute(
            "SELECT rule, labels, state, active_since FROM alert_state")}
        events = conn.execute("SELECT rule, labels, state, ts, value FROM alert_events ORDER BY id").fetchall()
    return states, events


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_engine_matches_brute_force(tmp_path, seed):
    cfg = make_config(tmp_path, rules_toml(RULES), interval=f"{INTERVAL}s")
    store = open_store(cfg)
    ev = Evaluator(cfg, store)
    rec = Recorder(seed)
    rng = random.Random(seed * 7919)
    restart_at = rng.randint(120, 220)
    t0 = 1_790_000_000 - 1_790_000_000 % 3600 + 1200
    judges: dict[tuple[str, str], BruteJudge] = {}
    fired_or_resolved = set()
    seen_states = set()
    try:
        for i in range(330):
            t = t0 + i * INTERVAL
            batch, late = rec.tick(t)
            store.write(t, batch)
            if late:
                store.write(t, late)   # a second writer (log ingestion), samples stamped in the past
            store.maintain(t)
            if i == restart_at:        # a daemon restart between two ticks
                ev.close()
                store.close()
                store = open_store(cfg)
                ev = Evaluator(cfg, store)
            ev.run(t)
            # the brute force, from the file
            with db(cfg) as conn:
                all_series = conn.execute("SELECT id, name, labels FROM series").fetchall()
                pts = {sid: series_samples(conn, sid) for sid, _, _ in all_series}
            for sid, name, labels in all_series:
                lab = json.loads(labels) if labels else {}
                for rule in RULES:
                    if rule["metric"] != name or any(lab.get(k) != v for k, v in rule.get("labels", {}).items()):
                        continue
                    key = (rule["name"], labels)
                    if key not in judges:
                        judges[key] = BruteJudge(rule, STALE, counter_kind(name))
                    judges[key].step(t, pts[sid])
            states, events = observed(cfg)
            expected = {}
            for key, j in judges.items():
                st = j.state()
                if st is not None:
                    expected[key] = (st, j.evals[[e[0] for e in j.evals].index(j.run_start())][0]
                                     if st == "pending" else None)
            got = {k: (v[0], v[1] if v[0] == "pending" else None) for k, v in states.items()}
            assert got == expected, f"tick {i} (t={t})"
            seen_states |= {v[0] for v in got.values()}
        exp_events = sorted((k[0], k[1], kind, ts, v) for k, j in judges.items() for kind, ts, v in j.events)
        got_events = sorted((r[0], r[1], r[2], r[3] / 1e6, r[4]) for r in events)
        assert [e[:4] for e in got_events] == [e[:4] for e in exp_events]
        for g, e in zip(got_events, exp_events):
            assert math.isclose(g[4], e[4], rel_tol=1e-12, abs_tol=1e-12), (g, e)
        fired_or_resolved = {(e[0], e[2]) for e in exp_events}
    finally:
        ev.close()
        store.close()
    # the history exercised what it is meant to (else the test could not fail)
    for name in ("hot", "hot-now", "tmax", "tmin", "rtf-mean", "rtf-p95", "err", "rss", "up"):
        assert (name, "firing") in fired_or_resolved, name
        assert (name, "resolved") in fired_or_resolved, name
    assert {"pending", "firing"} <= seen_states


def test_absence_never_resolves_and_ends_a_hold(tmp_path):
    cfg = make_config(tmp_path, rules_toml([
        dict(name="hot", metric="gpu_temperature_celsius", op=">", threshold=80, **{"for": 300})]))
    store = open_store(cfg)
    ev = Evaluator(cfg, store)
    t = 1_790_000_000
    try:
        def tick(value=None):
            nonlocal t
            t += 10
            store.write(t, [sample("gpu_temperature_celsius", value, gpu="gpu0")] if value is not None else [])
            return [(c.kind, c.alert.rule) for c in ev.run(t)]

        assert tick(85) == [("pending", "hot")]
        for _ in range(8):          # the last reading stays current for 90 s (3 intervals)...
            assert tick() == []
        assert tick() == [("cleared", "hot")]   # ...then it is absent: the hold ends, nothing fires
        assert tick(85) == [("pending", "hot")]
        for _ in range(29):
            assert tick(85) == []
        assert tick(85) == [("firing", "hot")]
        for _ in range(60):         # the sensor is gone for 10 minutes: still firing
            assert tick() == []
        states, _ = observed(cfg)
        assert states[("hot", labels_key({"gpu": "gpu0"}))][0] == "firing"
        assert tick(70) == [("resolved", "hot")]
        assert observed(cfg)[0] == {}
    finally:
        ev.close()
        store.close()


def test_restart_after_a_long_gap_restarts_holds_but_keeps_firing(tmp_path):
    cfg = make_config(tmp_path, rules_toml([
        dict(name="hot", metric="gpu_temperature_celsius", op=">", threshold=80, **{"for": 60}),
        dict(name="down", metric="backend_up", op="==", threshold=0, **{"for": 20})]))
    store = open_store(cfg)
    ev = Evaluator(cfg, store)
    t = 1_790_000_000
    for _ in range(4):
        t += 10
        store.write(t, [sample("gpu_temperature_celsius", 85, gpu="gpu0"), sample("backend_up", 0)])
        ev.run(t)
    states, _ = observed(cfg)
    assert {k[0]: v[0] for k, v in states.items()} == {"hot": "pending", "down": "firing"}
    ev.close()
    store.close()
    # the daemon was down for 10 minutes
    t += 600
    store = open_store(cfg)
    ev = Evaluator(cfg, store)
    try:
        store.write(t, [sample("gpu_temperature_celsius", 85, gpu="gpu0"), sample("backend_up", 0)])
        changes = ev.run(t)
        # the GPU hold starts over (no evidence while the daemon was down); "down" stays firing, no hooks
        assert [(c.kind, c.alert.rule) for c in changes] == [("pending", "hot")]
        states, events = observed(cfg)
        assert states[("hot", labels_key({"gpu": "gpu0"}))] == ("pending", t)
        assert [e[:3] for e in events] == [("down", "", "firing")]
    finally:
        ev.close()
        store.close()


def test_a_rule_edited_to_another_metric_drops_its_old_state(tmp_path):
    body = rules_toml([dict(name="x", metric="backend_up", op="==", threshold=0)])
    cfg = make_config(tmp_path, body)
    store = open_store(cfg)
    ev = Evaluator(cfg, store)
    store.write(100, [sample("backend_up", 0)])
    ev.run(100)
    ev.close()
    store.close()
    cfg = make_config(tmp_path, rules_toml([dict(name="x", metric="memory_available_bytes", op="<", threshold=1)]))
    store = open_store(cfg)
    ev = Evaluator(cfg, store)
    try:
        store.write(110, [sample("memory_available_bytes", 5e9)])
        ev.run(110)
        assert observed(cfg)[0] == {}
    finally:
        ev.close()
        store.close()


def test_window_keeps_first_value_of_a_repeated_timestamp_and_slides():
    w = Window(60)
    for t, v in [(10, 1.0), (20, 2.0), (20, 9.0), (15, 5.0), (70, 3.0)]:
        w.add(t, v)
    w.advance(75)                    # (15, 75]
    assert w.values() == [2.0, 3.0]
    assert w.base_ts == 15 and w.base_val == 5.0
    w.add(12, 7.0)                   # older than the base: ignored
    w.add(16, 8.0)                   # late, but inside the window
    assert w.values() == [8.0, 2.0, 3.0]
    assert w.aggregate("increase", 75, counter=False) == 3.0 - 5.0
    assert w.aggregate("increase", 75, counter=True) == 3 + 2 + 1  # 5->8, 8->2 is a reset, 2->3
    w.advance(78)
    assert (w.base_ts, w.base_val) == (16, 8.0) and w.values() == [2.0, 3.0]
    assert w.aggregate("count", 78, counter=False) == 2
    w.advance(200)
    assert w.aggregate("mean", 200, counter=False) is None and w.aggregate("count", 200, counter=False) == 0
    assert w.aggregate("increase", 200, counter=False) is None   # only the base (t=70) is left
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.95) == pytest.approx(3.85)


def _summed_whole(w: Window, now: float, counter: bool) -> dict:
    """What the window's values and base say, summed over the whole window (as before it kept sums)."""
    inside, base = w.values(), w.base(now)
    seq = ([] if base is None else [base]) + inside
    if len(seq) < 2:
        increase = None
    elif not counter:
        increase = seq[-1] - seq[0]
    else:
        increase = 0.0
        for a, b in zip(seq, seq[1:]):
            increase += (b - a) if b >= a else b
    finite = all(math.isfinite(v) for v in inside)
    mean = (math.fsum(inside) if finite else sum(inside)) / len(inside) if inside else None
    return {"count": float(len(inside)), "mean": mean, "increase": increase}


@pytest.mark.parametrize("seed", range(8))
def test_a_window_keeps_its_sums_as_it_slides_equal_to_summing_it_whole(seed):
    """The running sum and rises agree, to the bit, with the sums taken over the whole window at every
    step: samples in order, late, repeated, counters that reset, values that are not finite."""
    rng = random.Random(seed)
    counter = seed % 2 == 0
    w = Window(50)
    t, v = 1000.0, 0.0
    for _ in range(1500):
        r = rng.random()
        if r < 0.08:
            w.add(t - rng.randint(0, 70), float(rng.randint(0, 50)))   # late, repeated or before the window
        else:
            t += rng.choice([1, 2, 5])
            if counter:
                v = float(rng.randint(0, 3)) if rng.random() < 0.03 else v + rng.randint(0, 4)
            else:
                x = rng.uniform(-5, 5)            # values of every fineness: the kept sums change scale
                v = rng.choice([round(x, 1), round(x, 2), x / 3, x * 2 ** -60, float(round(x * 1e6))])
            if rng.random() < 0.01:
                v = rng.choice([math.inf, -math.inf, math.nan])
            w.add(t, v)
        now = t + rng.choice([0, 0, 1])
        w.advance(now)
        want = _summed_whole(w, now, counter)
        for name in ("count", "mean", "increase"):
            got = w.aggregate(name, now, counter)
            exp = want[name]
            assert (got is None) == (exp is None), (name, now)
            if got is not None:
                assert got == exp or (math.isnan(got) and math.isnan(exp)), (name, now, got, exp)


def test_a_full_window_is_judged_without_going_through_its_samples(monkeypatch):
    """A day of samples at 1 s arriving in order is slid and judged from the running sums: the whole
    window is recounted only for a late sample, and the samples are kept as 8-byte doubles."""
    w = Window(86400)
    for i in range(90000):
        w.add(float(i), float(i // 7))
        w.advance(float(i))
    calls = []
    monkeypatch.setattr(Window, "_recount", lambda self: calls.append(1))
    for i in range(90000, 90100):
        w.add(float(i), float(i // 7))
        w.advance(float(i))
        assert w.aggregate("increase", float(i), counter=True) == float(i // 7 - (i - 86400) // 7)
        assert w.aggregate("mean", float(i), counter=False) is not None
    assert calls == [] and w.vals.itemsize == 8 and w.ts.itemsize == 8
    w.add(89999.5, 1.0)                 # a late one, inside the window
    assert calls == [1]
