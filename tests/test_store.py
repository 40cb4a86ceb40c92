"""The store: migrations, schema refusal, sealing, rollups and retention against brute force."""
from __future__ import annotations

import hashlib
import math
import random
import sqlite3

import pytest

from ishowd.metrics import Sample, declare
from ishowd.store import migrate, rollup
from ishowd.store.errors import NoStore, SchemaTooNew
from ishowd.store.reader import Reader
from ishowd.store.writer import Store

from conftest import entry_point, run, write_config

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
A = declare("test_a_celsius", "celsius", "test metric A", ("zone",), group="thermal")
B = declare("test_b_bytes", "bytes", "test metric B")


def test_migrations_from_empty_create_the_schema(tmp_path):
    path = tmp_path / "s.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    assert migrate.current_revision(conn) == migrate.head()
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"series", "head", "chunks", "alembic_version"} <= tables
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096


def test_migrations_match_the_schema_module(tmp_path):
    """schema.py is the one definition: the migrations must build exactly it."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from ishowd.store.schema import metadata
    path = tmp_path / "s.db"
    Store(path).close()
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_generated_sql_is_current():
    """sql.py is compiled from statements.py and schema.py: regenerate it after changing either."""
    from ishowd.store import statements
    assert statements.GENERATED.read_text() == statements.compile_all(), \
        "run `python -m ishowd.store.statements` to regenerate ishowd/store/sql.py"


def test_daemon_side_never_imports_sqlalchemy(tmp_path):
    import subprocess
    import sys
    code = ("import sys; from ishowd.store.writer import Store; from ishowd.metrics import declare, Sample; "
            f"s = Store({str(tmp_path / 's.db')!r}); s.write(0, [Sample(declare('x_ratio', 'ratio', 'x'), 1.0)]); "
            "s.maintain(0); s.close(); print(sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_known_revisions_agree_with_alembic():
    from alembic.script import ScriptDirectory
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.migrations_dir()))
    script = ScriptDirectory.from_config(cfg)
    assert migrate.head() == script.get_current_head()
    assert set(migrate.known_revisions()) == {r.revision for r in script.walk_revisions()}


def _newer(path):
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.commit()
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_newer_schema_is_refused_and_untouched(tmp_path):
    path = tmp_path / "s.db"
    digest = _newer(path)
    with pytest.raises(SchemaTooNew, match="newer than this ishowd"):
        Store(path)
    with pytest.raises(SchemaTooNew):
        Reader(str(path))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_newer_schema_through_the_installed_commands(tmp_path):
    cfg = write_config(tmp_path)
    digest = _newer(tmp_path / "ishowd.db")
    for argv in ([entry_point("ishowd"), "run", "--once", "--config", str(cfg)],
                 [entry_point("ishowctl"), "--config", str(cfg), "status"],
                 [entry_point("ishowctl"), "--config", str(cfg), "db", "upgrade"]):
        proc = run(*argv)
        assert proc.returncode == 65, proc.stderr
        assert "revision 9999" in proc.stderr and "Traceback" not in proc.stderr
    assert hashlib.sha256((tmp_path / "ishowd.db").read_bytes()).hexdigest() == digest


def test_db_upgrade_command(tmp_path):
    cfg = write_config(tmp_path)
    proc = run(entry_point("ishowctl"), "--config", str(cfg), "db", "upgrade")
    assert proc.returncode == 0 and f"to revision {migrate.head()}" in proc.stdout
    proc = run(entry_point("ishowctl"), "--config", str(cfg), "db", "upgrade")
    assert proc.returncode == 0 and "already at revision" in proc.stdout


def test_reader_without_store(tmp_path):
    with pytest.raises(NoStore, match="no store at"):
        Reader(str(tmp_path / "none.db"))


# --- sealing, rollups, retention ---------------------------------------------------


def _simulate(store: Store, hours: int, seed: int = 1):
    """Irregular ticks with gaps and a broken sensor; returns the raw truth per series."""
    rng = random.Random(seed)
    truth: dict[tuple, list[tuple[int, float]]] = {}
    t = T0 + 7
    end = T0 + hours * 3600
    while t < end:
        batch = [Sample(B, float(rng.randrange(1 << 30, 1 << 33))),
                 Sample(A, round(40 + rng.random() * 30, 3), {"zone": "gpu-thermal"})]
        if rng.random() > 0.2:  # cv0 reads fail a fifth of the time: absent, not zero
            batch.append(Sample(A, rng.choice([-1.5, 0.0, 12.25, math.pi]), {"zone": "cv0-thermal"}))
        store.write(t, batch)
        for s in batch:
            truth.setdefault((s.metric.name, tuple(s.labels.items())), []).append((t, s.value))
        store.maintain(t)
        t += rng.choice([10, 10, 10, 10, 11, 9, 30, 600 if rng.random() < 0.01 else 10])
    return truth, t


def _brute(pairs, since, until, step):
    start, until = since - since % step, until + (-until) % step  # whole buckets at both ends
    out = {}
    for t, v in pairs:
        if start <= t < until:
            out.setdefault(t - t % step, []).append(v)
    return {b: rollup.of_values(vs) for b, vs in out.items()}


def _assert_same(got, want):
    assert sorted(got) == sorted(want)
    for b in want:
        g, w = got[b], want[b]
        assert g[0] == w[0] and g[1] == w[1] and g[2] == w[2], (b, g, w)
        assert math.isclose(g[3], w[3], rel_tol=1e-12, abs_tol=1e-9), (b, g, w)


@pytest.mark.parametrize("step", [10, 60, 300, 3600, 3 * 3600, 86400])
def test_history_matches_brute_force(tmp_path, step):
    store = Store(tmp_path / "s.db")
    truth, end = _simulate(store, hours=30)
    store.close()
    reader = Reader(str(tmp_path / "s.db"))
    for (name, labels), pairs in truth.items():
        (series,) = reader.series(name, dict(labels))
        for since, until in [(T0, end), (T0 + 5000, T0 + 40000), (end - 4000, end + 100)]:
            _assert_same(reader.buckets(series.id, since, until, step), _brute(pairs, since, until, step))
    # sealing really happened: the head holds only the last hour or two
    head = reader.conn.execute("SELECT min(ts) FROM head").fetchone()[0]
    assert head >= (end // 3600 - 2) * 3600
    assert reader.conn.execute("SELECT count(*) FROM chunks WHERE kind = 'raw'").fetchone()[0] > 50


def test_history_picks_the_coarsest_exact_tier():
    assert Reader.tier_for(86400) == "1h"
    assert Reader.tier_for(7200) == "1h"
    assert Reader.tier_for(300) == "1m"
    assert Reader.tier_for(90) == "raw"
    assert Reader.tier_for(10) == "raw"


def test_retention_prunes_each_tier_on_its_own(tmp_path):
    store = Store(tmp_path / "s.db", raw_retention=3 * 3600, minute_retention=6 * 3600, hour_retention=6 * 3600)
    truth, end = _simulate(store, hours=30, seed=3)
    store.maintain(end)
    store.close()
    reader = Reader(str(tmp_path / "s.db"))
    q = reader.conn.execute
    assert q("SELECT min(start_ts) FROM chunks WHERE kind = 'raw'").fetchone()[0] >= end - 3 * 3600 - 3600
    assert q("SELECT min(start_ts) FROM chunks WHERE kind = '1m'").fetchone()[0] >= end - 6 * 3600 - 3600
    # hourly rollups go a whole day at a time, once the day's last hour is past retention
    assert q("SELECT min(start_ts) FROM chunks WHERE kind = '1h'").fetchone()[0] == T0 + 86400
    pairs = truth[("test_b_bytes", ())]
    (series,) = reader.series("test_b_bytes")
    # what is kept still answers exactly
    since = T0 + 86400
    _assert_same(reader.buckets(series.id, since, end, 3600), _brute(pairs, since, end, 3600))
    since = end - end % 3600 - 5 * 3600
    _assert_same(reader.buckets(series.id, since, end, 60), _brute(pairs, since, end, 60))
    # and what is gone is gone, not invented
    assert reader.buckets(series.id, T0, T0 + 3600, 10) == {}
    assert reader.buckets(series.id, T0, T0 + 3600, 60) == {}
    assert reader.buckets(series.id, T0, T0 + 3600, 3600) == {}


def test_samples_from_a_clock_stepped_back_merge_into_sealed_hours(tmp_path):
    store = Store(tmp_path / "s.db")
    truth, end = _simulate(store, hours=5, seed=5)
    pairs = truth[("test_b_bytes", ())]
    # The clock steps back 4 hours: new samples land in hours already sealed, one
    # of them on a timestamp that already has a value (the first value is kept).
    back = [pairs[10][0], pairs[10][0] + 3, pairs[10][0] + 5]
    for t in back:
        store.write(t, [Sample(B, 7.0)])
    store.maintain(end + 7200)
    store.close()
    kept = dict(pairs)
    for t in back:
        kept.setdefault(t, 7.0)
    want_pairs = sorted(kept.items())
    reader = Reader(str(tmp_path / "s.db"))
    (series,) = reader.series("test_b_bytes")
    for step in (10, 60, 3600):
        _assert_same(reader.buckets(series.id, T0, end + 7200, step), _brute(want_pairs, T0, end + 7200, step))
    assert reader.raw(series.id, T0, end + 7200) == ([t for t, _ in want_pairs], [v for _, v in want_pairs])


def test_bulk_load_equals_ticking(tmp_path):
    rng = random.Random(9)
    ts = list(range(T0, T0 + 6 * 3600, 10))
    vals = [round(rng.random() * 100, 1) for _ in ts]
    store = Store(tmp_path / "s.db")
    store.bulk_load("test_b_bytes", {}, ts, vals)
    store.close()
    reader = Reader(str(tmp_path / "s.db"))
    (series,) = reader.series("test_b_bytes")
    assert reader.raw(series.id, T0, T0 + 6 * 3600) == (ts, vals)
    _assert_same(reader.buckets(series.id, T0, T0 + 6 * 3600, 300), _brute(list(zip(ts, vals)), T0, T0 + 6 * 3600, 300))


def test_latest_and_series_labels(tmp_path):
    store = Store(tmp_path / "s.db")
    store.write(T0, [Sample(A, 50.0, {"zone": "gpu-thermal"}), Sample(B, 1.0)])
    store.write(T0 + 10, [Sample(A, 51.5, {"zone": "gpu-thermal"})])
    store.close()
    reader = Reader(str(tmp_path / "s.db"))
    latest = {(r.name, tuple(r.labels.items())): (r.ts, r.value) for r in reader.latest(T0)}
    assert latest == {("test_a_celsius", (("zone", "gpu-thermal"),)): (T0 + 10, 51.5), ("test_b_bytes", ()): (T0, 1.0)}
    assert [r.name for r in reader.latest(T0 + 5)] == ["test_a_celsius"]
    assert reader.last_ts() == T0 + 10


def test_a_stray_module_in_the_working_directory_does_not_break_the_migration(tmp_path):
    """The schema is made by a child `python -m`, which puts its working directory first on
    sys.path: a timeit.py where the operator happened to start ishowd must not shadow the real one."""
    (tmp_path / "timeit.py").write_text("raise ImportError('the wrong timeit')\n")
    cfg = write_config(tmp_path)
    proc = run(entry_point("ishowd"), "run", "--once", "--config", str(cfg), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
