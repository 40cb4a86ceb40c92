"""Shared by the alert tests: configs, a real store, waiting on conditions, a brute-force judge."""
from __future__ import annotations

import math
import operator
import os
import sqlite3
import statistics
import sys
import time
from pathlib import Path

from ishowd import catalog
from ishowd import config as config_mod
from ishowd.catalog import registry
from ishowd.metrics import Sample, labels_key

VENV_BIN = Path(sys.executable).parent
REGISTRY = registry()


def make_config(tmp: Path, body: str = "", *, interval: str = "10s") -> config_mod.Config:
    text = f'[storage]\npath = "{tmp / "ishowd.db"}"\n[sampling]\ninterval = "{interval}"\n' \
           f'[exporter]\nlisten = ""\n[alerts]\nhook_retry_delay = "50ms"\nhook_kill_grace = "300ms"\n' + body
    path = tmp / "ishowd.toml"
    path.write_text(text, encoding="utf-8")
    return catalog.load_config(str(path))


def open_store(cfg):
    from ishowd.paths import store_path
    from ishowd.store.writer import Store
    return Store(store_path(cfg))


def sample(metric: str, value: float, ts: float | None = None, **labels) -> Sample:
    return Sample(REGISTRY[metric], value, labels, ts)


def wait_for(cond, timeout: float = 10.0, what: str = "condition"):
    """Poll ``cond`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def db(cfg) -> sqlite3.Connection:
    from ishowd.paths import store_path
    return sqlite3.connect(store_path(cfg))


def hook_runs(cfg) -> list[tuple]:
    with db(cfg) as conn:
        return conn.execute("SELECT event_id, hook, attempt, status, exit_code, output FROM hook_runs "
                            "ORDER BY id").fetchall()


def gone(pid: int) -> bool:
    """No such process, or only a zombie waiting to be reaped."""
    import psutil
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def write_hook(tmp: Path, name: str, body: str) -> Path:
    path = tmp / name
    path.write_text(f"#!{sys.executable}\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return path


# --- the brute-force judge -----------------------------------------------------------------
# Everything from first principles, re-reading the whole series from the store
# each time: no windows kept, no incremental state.

OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
       "==": operator.eq, "!=": operator.ne}


def series_samples(conn: sqlite3.Connection, sid: int) -> list[tuple[int, float]]:
    from ishowd.store import codec
    out = []
    for (blob,) in conn.execute("SELECT data FROM chunks WHERE series_id = ? AND kind = 'raw'", (sid,)):
        ts, (vals,) = codec.decode(blob)
        out += list(zip(ts, vals))
    seen = set()
    for ts, blob in conn.execute("SELECT ts, data FROM head ORDER BY id"):   # the first value per ts wins
        for s, v in codec.unpack_tick(blob):
            if s == sid and ts not in seen:
                seen.add(ts)
                out.append((ts, v))
    out.sort()
    return out


def naive_value(rule: dict, pts: list[tuple[int, float]], t: float, stale: float, counter: bool):
    window = rule.get("window")
    if window is None:
        if not pts:
            return None
        newest_ts, newest_v = max(pts, key=lambda p: p[0])
        return newest_v if newest_ts > t - stale else None
    inside = [v for ts, v in pts if ts > t - window]
    before = [(ts, v) for ts, v in pts if t - window - 3600 < ts <= t - window]
    agg = rule["aggregate"]
    if agg == "count":
        return float(len(inside))
    if agg == "increase":
        seq = ([max(before)[1]] if before else []) + inside
        if len(seq) < 2:
            return None
        if not counter:
            return seq[-1] - seq[0]
        total = 0.0
        for a, b in zip(seq, seq[1:]):
            total += (b - a) if b >= a else b
        return total
    if not inside:
        return None
    if agg == "mean":
        return math.fsum(inside) / len(inside)
    if agg == "max":
        return max(inside)
    if agg == "min":
        return min(inside)
    if agg == "p95":
        if len(inside) == 1:
            return inside[0]
        return statistics.quantiles(inside, n=20, method="inclusive")[18]
    raise AssertionError(agg)


class BruteJudge:
    """One (rule, series): the expected state after each evaluation, from its whole history."""

    def __init__(self, rule: dict, stale: float, counter: bool):
        self.rule, self.stale, self.counter = rule, stale, counter
        self.evals: list[tuple[float, object, bool]] = []   # (t, value, holds)
        self.firing = False
        self.fired_at = None
        self.events: list[tuple[str, float, object]] = []   # (firing|resolved, t, value)

    def step(self, t: float, pts) -> None:
        v = naive_value(self.rule, pts, t, self.stale, self.counter)
        holds = v is not None and OPS[self.rule["op"]](v, self.rule["threshold"])
        self.evals.append((t, v, holds))
        if self.firing:
            if v is not None and not holds:
                self.firing = False
                self.events.append(("resolved", t, v))
            return
        start = self.run_start()
        if start is not None and t - start >= self.rule.get("for", 0):
            self.firing, self.fired_at = True, t
            self.events.append(("firing", t, v))

    def run_start(self):
        """The first evaluation of the current unbroken run of holding evaluations, or None."""
        if not self.evals or not self.evals[-1][2]:
            return None
        i = len(self.evals) - 1
        while i > 0 and self.evals[i - 1][2]:
            i -= 1
        return self.evals[i][0]

    def state(self):
        if self.firing:
            return "firing"
        return "pending" if self.run_start() is not None else None


def counter_kind(metric: str) -> bool:
    return REGISTRY[metric].kind == "counter"


__all__ = ["make_config", "open_store", "sample", "wait_for", "db", "hook_runs", "gone", "write_hook",
           "series_samples", "naive_value", "BruteJudge", "counter_kind", "labels_key", "VENV_BIN", "os"]
