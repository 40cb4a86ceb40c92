"""The weekly report against planted regressions, ``--check``, ``rtf list`` and ``rtf plot``."""
from __future__ import annotations

import csv
import io
import json
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from backend_harness import ISHOWCTL
from ishowd.backend.report import WEEK, week_start
from ishowd.units import DECIMALS, MEAN_DECIMALS

NOW = time.time()
CUR = week_start(NOW)


def week(k: int) -> int:
    """The start of the week ``k`` weeks before the current one."""
    return CUR - k * WEEK


class Planted:
    def __init__(self, tmp_path):
        from ishowd.store.writer import Store
        self.db = str(tmp_path / "ishowd.db")
        self.config = str(tmp_path / "ishowd.toml")
        with open(self.config, "w") as f:
            f.write(f'[storage]\npath = "{self.db}"\n[exporter]\nlisten = ""\n')
        self.store = Store(self.db)
        self.rows: list[tuple] = []
        self.rnd = random.Random(11)

    def add(self, start: int, rtfs, *, source="api", first=False, spread=WEEK - 3600):
        for r in rtfs:
            ts = start + 60 + self.rnd.random() * spread
            self.rows.append((int(ts * 1e6) + len(self.rows), source, "walter", int(r * 8400), 8.4, r, "f5",
                              int(first), "/ssd/ishowtts/logs/backend.log"))

    def metric(self, name: str, start: int, value: float, hours: int = 7 * 24):
        ts = list(range(start, start + hours * 3600, 600))
        self.store.bulk_load(name, {"gpu": "gpu"}, ts, [value] * len(ts))

    def commit(self):
        with self.store.transaction() as conn:
            conn.executemany("INSERT INTO rtf_records (ts, source, voice, elapsed_ms, audio_seconds, rtf, engine, "
                             "first_after_start, log) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self.rows)
        self.store.close()

    def ctl(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run([ISHOWCTL, "--config", self.config, *args], capture_output=True, text=True, timeout=60)


def expected_stats(vals):
    vals = sorted(vals)
    q = statistics.quantiles(vals, n=100, method="inclusive")
    return {"count": len(vals), "mean": statistics.fmean(vals), "p50": statistics.median(vals), "p95": q[94],
            "max": max(vals)}


@pytest.fixture
def planted(tmp_path):
    p = Planted(tmp_path)
    rnd = random.Random(5)
    normal = lambda n, mu=0.278: [max(0.05, rnd.gauss(mu, 0.01)) for _ in range(n)]  # noqa: E731
    # week 5: fine, with compile outliers that alone would wreck mean and p95
    p.add(week(5), normal(300))
    p.add(week(5), [6.5, 7.0, 9.0], first=True)
    p.metric("gpu_frequency_locked", week(5), 1)
    # week 4: the mean regresses while the GPU lock is lost
    p.add(week(4), normal(250, 0.40))
    p.metric("gpu_frequency_locked", week(4), 0)
    p.metric("gpu_temperature_celsius", week(4), 61)
    # week 3: the mean is fine, the p95 is not (a hot GPU for part of the week)
    p.add(week(3), normal(180, 0.27))
    p.add(week(3), normal(20, 0.55), spread=20 * 3600)
    p.metric("gpu_frequency_locked", week(3), 1)
    p.metric("gpu_temperature_celsius", week(3), 91, hours=24)
    # week 2: too few requests to judge, however slow
    p.add(week(2), [0.9] * 5)
    # week 1 (the latest complete): fine API, slow chat (never judged), many compile outliers
    p.add(week(1), normal(40))
    p.add(week(1), [0.9] * 200, source="chat")
    p.add(week(1), [12.0] * 30, first=True)
    # the current week: a regression in progress, not complete
    p.add(CUR, normal(30, 0.5), spread=max(60.0, NOW - CUR - 120))
    p.commit()
    return p


def test_weekly_json_against_brute_force(planted):
    r = planted.ctl("rtf", "weekly", "--weeks", "6", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [w["start"] for w in out] == sorted(w["start"] for w in out)
    assert len(out) == 6
    for w in out:
        assert {"week", "start", "count", "mean", "p50", "p95", "max", "regression", "reason"} <= set(w)
        start = int(datetime.fromisoformat(w["start"]).timestamp())
        assert datetime.fromisoformat(w["start"]).utcoffset() is not None
        iso = datetime.fromtimestamp(start, timezone.utc).isocalendar()
        assert w["week"] == f"{iso[0]}-W{iso[1]:02d}"
        vals = [row[5] for row in planted.rows if row[1] == "api" and not row[7]
                and start * 1e6 <= row[0] < (start + WEEK) * 1e6]
        exp = expected_stats(vals) if len(vals) > 1 else None
        if exp:
            for k in ("count", "mean", "p50", "p95", "max"):
                # statistics are printed to what an RTF resolves: half the last decimal place at most
                places = DECIMALS["ratio"] + (0 if k == "max" else MEAN_DECIMALS)
                assert w[k] == pytest.approx(exp[k], rel=0, abs=0.5 * 10 ** -places + 1e-12), (w["week"], k)
    by = {int(datetime.fromisoformat(w["start"]).timestamp()): w for w in out}
    assert by[week(5)]["regression"] is False and by[week(5)]["first_after_start"] == 3
    assert by[week(4)]["regression"] is True
    assert by[week(4)]["reason"].startswith("mean RTF")
    assert "GPU not locked during 250 of 250" in by[week(4)]["reason"]
    assert by[week(3)]["regression"] is True
    assert by[week(3)]["reason"].startswith("p95 RTF") and "mean" not in by[week(3)]["reason"].split(";")[0]
    assert "GPU hot" in by[week(3)]["reason"] and "not locked" not in by[week(3)]["reason"]
    assert by[week(2)]["regression"] is None and "only 5 API requests" in by[week(2)]["reason"]
    assert by[week(1)]["regression"] is False and by[week(1)]["chat"]["count"] == 200
    assert by[CUR]["complete"] is False and by[CUR]["regression"] is True


def test_check_judges_the_latest_complete_week(planted):
    assert planted.ctl("rtf", "weekly", "--check").returncode == 0        # week 1 is fine
    # a stricter baseline makes week 1 regress
    r = planted.ctl("rtf", "weekly", "--check", "--baseline", "0.2")
    assert r.returncode == 1 and "regressed" in r.stderr
    r = planted.ctl("rtf", "weekly", "--weeks", "3")
    assert r.returncode == 0 and "REGRESSED" in r.stdout and "not judged" in r.stdout


def test_compile_outliers_alone_never_regress(tmp_path):
    p = Planted(tmp_path)
    p.add(week(1), [0.27] * 25)
    p.add(week(1), [15.0] * 25, first=True)   # as many compile outliers as requests
    p.commit()
    r = p.ctl("rtf", "weekly", "--check", "--json")
    assert r.returncode == 0
    w = json.loads(r.stdout)[-2]
    assert w["regression"] is False and w["max"] == 0.27 and w["first_after_start"] == 25


def test_rtf_list_json_and_csv(planted):
    since = datetime.fromtimestamp(int(NOW - 8 * 86400), timezone.utc)
    r = planted.ctl("rtf", "list", "--since", since.isoformat(), "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    want = sorted(x[0] for x in planted.rows if x[0] >= since.timestamp() * 1e6)
    assert len(rows) == len(want)
    assert [r_["ts"] for r_ in rows] == sorted(r_["ts"] for r_ in rows)
    assert {"ts", "rtf", "elapsed_ms", "audio_seconds", "engine", "voice", "source"} <= set(rows[0])
    assert datetime.fromisoformat(rows[0]["ts"]).timestamp() == pytest.approx(want[0] / 1e6, abs=1e-6)
    r = planted.ctl("rtf", "list", "--since", "8d", "--csv", "--source", "chat")
    table = list(csv.DictReader(io.StringIO(r.stdout)))
    assert table and all(t["source"] == "chat" for t in table)
    r = planted.ctl("rtf", "list", "--since", "2h")
    assert r.returncode == 0


def test_cli_read_paths_stay_light(planted):
    code = ("import sys\nfrom ishowd.cli import main\n"
            "for argv in (['rtf','list','--json'], ['rtf','weekly','--json'], ['status','--json']):\n"
            "    try:\n        main(['--config', sys.argv[1], *argv])\n    except SystemExit:\n        pass\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy','alembic','matplotlib','numpy'})\n"
            "print('HEAVY', heavy, file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code, planted.config], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in r.stderr, r.stderr


def test_plot_writes_a_png(planted, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "rtf.png"
    r = planted.ctl("rtf", "plot", "--weeks", "6", "--output", str(out))
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_old_store_without_the_table(tmp_path):
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from ishowd.store import migrate
    db = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{db}")   # a real store of revision 0001, before rtf_records
    with engine.begin() as conn:
        alembic = Config()
        alembic.set_main_option("script_location", migrate.migrations_dir())
        alembic.attributes["connection"] = conn
        command.upgrade(alembic, "0001")
    engine.dispose()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[storage]\npath = "{db}"\n')
    r = subprocess.run([ISHOWCTL, "--config", str(cfg), "rtf", "weekly"], capture_output=True, text=True)
    assert r.returncode == 1 and "db upgrade" in r.stderr


def test_benchmark_requests_and_runs_stay_beside_production(tmp_path):
    """The benchmark's own records are listed as source=benchmark and enter no production figure;
    each week's benchmark runs show as their mean beside it."""
    p = Planted(tmp_path)
    rnd = random.Random(3)
    p.add(week(1), [max(0.05, rnd.gauss(0.278, 0.01)) for _ in range(60)])
    p.add(week(1), [0.95] * 12, source="benchmark")      # slow enough to regress the week if counted
    runs = [(week(1) + 86400, "ok", {"runs": 5, "warmup": 1, "rtf": {"mean": 0.281}}),
            (week(1) + 3 * 86400, "failed", {"runs": 5, "warmup": 1, "rtf": {"mean": 0.379}}),
            (week(1) + 4 * 86400, "skipped", {}),            # refused: no figures, not shown
            (week(0) + 60, "ok", {"runs": 5, "warmup": 1, "rtf": {"mean": 0.25}})]
    with p.store.transaction() as conn:
        conn.executemany("INSERT INTO job_runs (job, started, finished, status, detail, result, \"trigger\") "
                         "VALUES ('benchmark', ?, ?, ?, '', ?, 'schedule')",
                         [(int(t * 1e6), int((t + 20) * 1e6), st, json.dumps(res)) for t, st, res in runs])
        now_us = int(NOW * 1e6)
        conn.executemany("INSERT INTO rtf_records (ts, source, voice, elapsed_ms, audio_seconds, rtf, engine, "
                         "first_after_start, log) VALUES (?, ?, 'walter', 2000, 8.0, ?, 'f5', 0, 'x')",
                         [(now_us - 600_000_000, "api", 0.25), (now_us - 500_000_000, "benchmark", 0.9),
                          (now_us - 400_000_000, "benchmark", 0.9)])
    p.commit()
    out = {w["week"]: w for w in json.loads(p.ctl("rtf", "weekly", "--weeks", "2", "--json").stdout)}
    last, cur = sorted(out)
    api = [row[5] for row in p.rows if row[1] == "api" and week(1) * 1e6 <= row[0] < week(0) * 1e6]
    assert out[last]["count"] == len(api) == 60
    assert out[last]["mean"] == pytest.approx(statistics.fmean(api))
    assert out[last]["regression"] is False
    assert out[last]["benchmark"] == {"runs": 2, "mean": pytest.approx((0.281 + 0.379) / 2)}
    assert out[cur]["benchmark"]["runs"] == 1
    table = p.ctl("rtf", "weekly", "--weeks", "2").stdout
    assert "bench" in table.splitlines()[0] and "0.330" in table

    listed = json.loads(p.ctl("rtf", "list", "--since", "14d", "--source", "benchmark", "--json").stdout)
    assert len(listed) == 14 and {r["source"] for r in listed} == {"benchmark"}

    status = json.loads(p.ctl("status", "--json").stdout)["rtf"]
    assert (status["count"], status["mean"]) == (1, pytest.approx(0.25))
    assert status["benchmark"]["count"] == 2
    assert "(2 benchmark requests not counted)" in p.ctl("status").stdout
