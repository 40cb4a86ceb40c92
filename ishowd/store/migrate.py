"""Schema versions: which revisions this code knows, and applying them.

Checking the version needs only ``sqlite3`` (fast, for the CLI); applying
migrations imports Alembic, which only happens when one is pending.
"""
from __future__ import annotations

import re
import sqlite3
import os

from .errors import SchemaTooNew, StoreError

# Every page a commit dirties is written to the WAL and later to the file (the
# Jetson's eMMC wears with each). A tick's row (~0.5 KB) dirties one 4 KiB page,
# and sealed chunks (~0.4 KB each) pack well into them; 1 KiB pages halved the
# bytes per tick but wasted a third of the chunk table in half-empty pages.
PAGE_SIZE = 4096

_REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")


def migrations_dir() -> str:
    """The Alembic tree: ``ishowd/migrations`` in a wheel (pyproject maps ``migrations/`` there),
    ``migrations/`` beside the package in a checkout. Found by path: ``importlib.resources``
    (and pathlib) would cost every ``ishowctl`` call 8 ms to learn where a folder next to this one is."""
    here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    installed = os.path.join(here, "migrations")
    return installed if os.path.exists(os.path.join(installed, "env.py")) else \
        os.path.join(os.path.dirname(here), "migrations")


def known_revisions() -> list[str]:
    """Revision ids in order; files are named ``NNNN_slug.py`` with ``revision = "NNNN"``."""
    names = sorted(os.listdir(os.path.join(migrations_dir(), "versions")))
    return [m.group(1) for m in map(_REVISION_FILE.match, names) if m]


def head() -> str:
    return known_revisions()[-1]


def current_revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


def check_version(conn: sqlite3.Connection, path: str) -> str | None:
    """Refuse a store written by a newer ishowd; return its revision (None: empty)."""
    rev = current_revision(conn)
    if rev is not None and rev not in known_revisions():
        raise SchemaTooNew(
            f"{path}: the store's schema (revision {rev}) is newer than this ishowd knows "
            f"(up to {head()}); upgrade ishowd, or point [storage] path at another file. "
            "The store was not touched.")
    return rev


def _prepare_new(path: str) -> None:
    """Page size and WAL must be set before the first table exists."""
    conn = sqlite3.connect(path)
    try:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            conn.execute("VACUUM")  # applies the page size to the empty file
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def upgrade(path: str) -> tuple[str | None, str]:
    """Bring the store at ``path`` to the head revision, in this process (imports Alembic)."""
    probe = sqlite3.connect(path)
    try:
        before = check_version(probe, path)
    finally:
        probe.close()
    target = head()
    if before == target:
        return before, target
    _prepare_new(path)
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            cfg = AlembicConfig()
            cfg.set_main_option("script_location", str(migrations_dir()))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except Exception as exc:  # an Alembic/SQL failure is a store problem for the operator
        raise StoreError(f"{path}: migration failed: {exc}") from exc
    finally:
        engine.dispose()
    return before, target


def ensure_current(path: str) -> tuple[str | None, str]:
    """Check the version with sqlite3; when a migration is pending, run it in a child
    process so Alembic and SQLAlchemy never take up room in the long-running daemon."""
    import subprocess
    import sys

    probe = sqlite3.connect(path)
    try:
        before = check_version(probe, path)
    finally:
        probe.close()
    if before == head():
        return before, before
    proc = subprocess.run([sys.executable, "-m", "ishowd.store.migrate", path],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise StoreError(f"{path}: migration failed: {detail}")
    return before, head()


if __name__ == "__main__":  # the child process of ensure_current()
    import sys
    try:
        upgrade(sys.argv[1])
    except StoreError as exc:
        print(exc, file=sys.stderr)
        sys.exit(exc.exit_code)
