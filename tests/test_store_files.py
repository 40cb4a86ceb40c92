"""What is at ``[storage] path`` when it is not a usable store: refused in one line by both programs,
and left exactly as it was; only nothing, an empty file or an empty SQLite database becomes a store."""
from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ishowd.metrics import Sample, declare
from ishowd.store import migrate
from ishowd.store.writer import Store

from conftest import entry_point, run, write_config

T0 = 1_767_225_600
METRICS = [declare(f"test_files_{i}_ratio", "ratio", "a store-files test metric") for i in range(30)]


def real_store(path: Path, ticks: int = 3000) -> None:
    """A store the way the daemon writes it: many head pages of real ticks."""
    store = Store(path)
    rng = random.Random(3)
    for i in range(ticks):
        store.write(T0 + 10 * i, [Sample(m, rng.random()) for m in METRICS])
    store.close()


def damage(path: Path) -> None:
    """Garbage over pages in the middle of the file: SQLite's checks fail, its header still reads."""
    pages = path.stat().st_size // migrate.PAGE_SIZE
    rng = random.Random(7)
    with open(path, "r+b") as f:
        for page in range(pages // 3, pages // 3 + 8):
            f.seek(page * migrate.PAGE_SIZE)
            f.write(rng.randbytes(migrate.PAGE_SIZE))


def foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
                       "INSERT INTO customers (name) VALUES ('Ada'), ('Grace');")
    conn.close()


def foreign_alembic(path: Path) -> None:
    """Another program whose schema Alembic also manages (its revision ids are hashes)."""
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY);"
                       "INSERT INTO alembic_version VALUES ('3f2a1b9c0d4e');"
                       "CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL);")
    conn.close()


def foreign_with_wal(path: Path) -> None:
    """A WAL database whose last commits are still only in its -wal file (its program was killed):
    a read-write open would checkpoint them into the file."""
    code = ("import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0'); "
            "c.execute('CREATE TABLE notes (body TEXT)'); "
            "c.execute(\"INSERT INTO notes VALUES ('kept in the WAL')\"); os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    assert Path(f"{path}-wal").stat().st_size > 0


def random_bytes(path: Path) -> None:
    path.write_bytes(random.Random(1).randbytes(100_000))


def text(path: Path) -> None:
    path.write_text("these are someone's notes, not a database\n" * 200)


def directory(path: Path) -> None:
    path.mkdir()
    (path / "inside.txt").write_text("a file in the directory")


def damaged_store(path: Path) -> None:
    real_store(path)
    damage(path)


UNUSABLE = {
    "random-bytes": (random_bytes, "not an SQLite database (random bytes?)"),
    "text": (text, "not an SQLite database (it holds text)"),
    "directory": (directory, "is a directory, not a store file"),
    "foreign": (foreign, "an SQLite database that is not an ishowd store (tables: customers)"),
    "foreign-alembic": (foreign_alembic, "not an ishowd store (tables: orders; Alembic revision 3f2a1b9c0d4e)"),
    "foreign-wal": (foreign_with_wal, "not an ishowd store (tables: notes)"),
    "damaged": (damaged_store, "the store is damaged"),
}


def snapshot(path: Path) -> dict:
    """Every file at or beside the store path: content digest and mtime (ns). Not what any reader
    of a WAL database makes: its -shm (the index of the -wal, kept in shared memory, rebuilt by
    each first reader) and an empty -wal."""
    files = [p for p in path.parent.rglob("*")
             if p.is_file() and p.name != "ishowd.toml" and not p.name.endswith("-shm")
             and not (p.name.endswith("-wal") and p.stat().st_size == 0)]
    return {str(p.relative_to(path.parent)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in files}


def commands(cfg: Path) -> dict[str, list[str]]:
    ctl = [entry_point("ishowctl"), "--config", str(cfg)]
    return {
        "ishowd run": [entry_point("ishowd"), "run", "--once", "--config", str(cfg)],
        "ishowctl status": ctl + ["status"],
        "ishowctl history": ctl + ["history", METRICS[0].name, "--since", "400d"],
        "ishowctl db upgrade": ctl + ["db", "upgrade"],
        "ishowctl db check": ctl + ["db", "check"],
    }


def one_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.mark.parametrize("kind", list(UNUSABLE))
def test_an_unusable_file_is_refused_by_every_command_and_left_as_it_was(tmp_path, kind):
    make, says = UNUSABLE[kind]
    db = tmp_path / "ishowd.db"
    make(db)
    cfg = write_config(tmp_path)
    before = snapshot(db)
    for name, argv in commands(cfg).items():
        proc = run(*argv)
        assert proc.returncode == 65, f"{name}: {proc.returncode}\n{proc.stderr}"
        line = one_line(proc)
        assert says in line and str(db) in line or name.startswith("ishowctl") and "the store is damaged" in line, \
            f"{name}: {line}"
        # nothing changed, and nothing was left beside it (no lock file, no -wal)
        assert snapshot(db) == before, name


def test_a_damaged_store_is_refused_at_start_with_the_way_out(tmp_path):
    db = tmp_path / "ishowd.db"
    damaged_store(db)
    proc = run(entry_point("ishowd"), "run", "--once", "--config", str(write_config(tmp_path)))
    line = one_line(proc)
    assert proc.returncode == 65
    assert "quick_check: Page" in line and "ishowctl db check" in line and f"mv {db} {db}.damaged" in line
    check = run(entry_point("ishowctl"), "--config", str(write_config(tmp_path)), "db", "check")
    assert check.returncode == 65
    listed = check.stdout.splitlines()
    assert listed and all(p.startswith("Page ") for p in listed), check.stdout
    assert f"{len(listed)} problem" in one_line(check)


def test_db_check_of_a_sound_store(tmp_path):
    real_store(tmp_path / "ishowd.db", ticks=50)
    proc = run(entry_point("ishowctl"), "--config", str(write_config(tmp_path)), "db", "check")
    assert proc.returncode == 0 and "no damage found" in proc.stdout, proc.stderr


def empty_file(path: Path) -> None:
    path.write_bytes(b"")


def empty_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE scratch (x); DROP TABLE scratch;")
    conn.close()
    assert path.read_bytes().startswith(migrate.SQLITE_HEADER)


@pytest.mark.parametrize("make", [empty_file, empty_database], ids=["empty-file", "empty-database"])
def test_an_empty_file_or_database_becomes_a_store(tmp_path, make):
    db = tmp_path / "ishowd.db"
    make(db)
    cfg = write_config(tmp_path)
    status = run(entry_point("ishowctl"), "--config", str(cfg), "status")
    assert status.returncode == 1 and "the store is empty" in one_line(status)
    proc = run(entry_point("ishowd"), "run", "--once", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    conn = sqlite3.connect(db)
    assert migrate.current_revision(conn) == migrate.head()
    assert conn.execute("PRAGMA page_size").fetchone()[0] == migrate.PAGE_SIZE
    assert conn.execute("SELECT count(*) FROM head").fetchone()[0] == 1


# --- a read-only directory (as root, file modes stop nothing: a read-only mount does) -----------

@pytest.fixture
def read_only_view(tmp_path):
    """(writable dir, the same dir mounted read-only); unmounted whatever the test does."""
    src, view = tmp_path / "src", tmp_path / "view"
    src.mkdir()
    view.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a read-only mount needs root (file modes do not stop root, and this test runs as root in CI)")
    bind = subprocess.run(["mount", "--bind", str(src), str(view)], capture_output=True, text=True)
    if bind.returncode != 0:
        pytest.skip(f"mounting is not allowed here: {bind.stderr.strip()}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], capture_output=True, text=True)
        if ro.returncode != 0:
            pytest.skip(f"remounting read-only is not allowed here: {ro.stderr.strip()}")
        yield src, view
    finally:
        subprocess.run(["umount", str(view)], check=True)


def test_a_store_in_a_read_only_directory_is_refused_clearly(read_only_view, tmp_path):
    src, view = read_only_view
    real_store(src / "ishowd.db", ticks=20)   # closed cleanly: no -wal or -shm is left
    before = snapshot(src / "ishowd.db")
    cfg = tmp_path / "ro.toml"
    cfg.write_text(f'[storage]\npath = "{view / "ishowd.db"}"\n[exporter]\nlisten = ""\n')
    daemon = run(entry_point("ishowd"), "run", "--once", "--config", str(cfg))
    line = one_line(daemon)
    assert daemon.returncode == 1 and "is on a read-only file system" in line and "make it writable" in line, line
    for argv in (["status"], ["history", METRICS[0].name], ["db", "check"]):
        proc = run(entry_point("ishowctl"), "--config", str(cfg), *argv)
        line = one_line(proc)
        assert proc.returncode == 1, line
        assert "read-only file system" in line and "-shm" in line and "empty" not in line, line
    assert snapshot(src / "ishowd.db") == before


def test_no_store_yet_in_a_read_only_directory(read_only_view, tmp_path):
    _, view = read_only_view
    cfg = tmp_path / "ro.toml"
    cfg.write_text(f'[storage]\npath = "{view / "ishowd.db"}"\n[exporter]\nlisten = ""\n')
    daemon = run(entry_point("ishowd"), "run", "--once", "--config", str(cfg))
    line = one_line(daemon)
    assert daemon.returncode == 1 and f"cannot create {view / 'ishowd.db'}.lock (Read-only file system)" in line
    upgrade = run(entry_point("ishowctl"), "--config", str(cfg), "db", "upgrade")
    assert upgrade.returncode == 1 and "read-only file system" in one_line(upgrade)
    status = run(entry_point("ishowctl"), "--config", str(cfg), "status")
    assert status.returncode == 1 and "no store at" in one_line(status)
