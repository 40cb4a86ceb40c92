"""Schema versions: which revisions this code knows, and applying them; and what is at the path.

Checking the version needs only ``sqlite3`` (fast, for the CLI); applying
migrations imports Alembic, which only happens when one is pending.

Both programs look at the file before they use it (``inspect``): anything at
``[storage] path`` that is not an ishowd store (a directory, random bytes,
another program's database, a damaged store) is refused with what to do, and
left exactly as it is. Only nothing, an empty file or an empty SQLite
database becomes a new store.
"""
from __future__ import annotations

import os
import re
import sqlite3
import stat

from .errors import NotAStore, SchemaTooNew, StoreError, damaged, sqlite_kind

# Every page a commit dirties is written to the WAL and later to the file (the
# Jetson's eMMC wears with each). A tick's row (~0.5 KB) dirties one 4 KiB page,
# and sealed chunks (~0.4 KB each) pack well into them; 1 KiB pages halved the
# bytes per tick but wasted a third of the chunk table in half-empty pages.
PAGE_SIZE = 4096

_REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")
_REVISION = re.compile(r"^\d{4}$")
SQLITE_HEADER = b"SQLite format 3\x00"
# Revision 0001 made these; a database with an ``alembic_version`` table but without them
# is another program's that Alembic also manages.
_CORE_TABLES = frozenset({"series", "head", "chunks"})


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
    except sqlite3.OperationalError as exc:
        if str(exc).startswith("no such table"):
            return None
        raise
    return row[0] if row else None


# --- what is at the path --------------------------------------------------------------

def uri_path(path) -> str:
    """A path as the path of an SQLite ``file:`` URI: only "%", "?" and "#" need escaping there
    (sqlite.org/uri.html); urllib.parse would cost every ``ishowctl`` call 2 ms to import."""
    return str(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")


def open_ro(path: str) -> sqlite3.Connection:
    """A read-only connection: looking at a file must not change it (a read-write one would
    checkpoint another program's WAL into it, or make an empty file a database)."""
    return sqlite3.connect(f"file:{uri_path(os.path.realpath(path))}?mode=ro", uri=True, timeout=5)


def check_file(path: str) -> bool:
    """Refuse what at ``path`` cannot be an SQLite file, from its first bytes: SQLite would call a
    directory "unable to open" and random bytes "not a database", and not say what to do.
    True when a file with something in it is there; False for nothing (yet) or an empty file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StoreError(f"{path}: cannot reach the store: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise NotAStore(f"{path}: is a directory, not a store file: set [storage] path to a file "
                        f"(such as {os.path.join(path, 'ishowd.db')})")
    if not stat.S_ISREG(st.st_mode):
        raise NotAStore(f"{path}: not a regular file: set [storage] path to a file")
    if st.st_size == 0:
        return False
    try:
        with open(path, "rb") as f:
            start = f.read(512)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the store: {exc.strerror}: run ishowd as the user that "
                         "owns it (ishowd), or fix its mode") from None
    if not start.startswith(SQLITE_HEADER):
        raise NotAStore(f"{path}: not an SQLite database ({_looks_like(start)}): move it aside or set "
                        "[storage] path; ishowd leaves it as it is")
    return True


def _looks_like(start: bytes) -> str:
    try:
        start.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut by the 512 bytes read is still text
        if exc.reason != "unexpected end of data":
            return "random bytes?"
    return "it holds text" if b"\0" not in start else "random bytes?"


def identify(conn: sqlite3.Connection, path: str) -> str | None:
    """The revision of the ishowd store ``conn`` reads; None for an empty database, which the
    writer may make a store. A store newer than this ishowd and any other program's database
    are refused."""
    try:
        objects = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
        tables = {name for kind, name in objects if kind == "table"}
        rev = current_revision(conn) if "alembic_version" in tables else None
    except sqlite3.Error as exc:
        raise explain(exc, path) from None
    if not objects:
        return None
    if rev is None or not _REVISION.match(rev) or not _CORE_TABLES <= tables:
        theirs = sorted(t for t in tables if not t.startswith("sqlite_") and t != "alembic_version")
        listed = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
        raise NotAStore(f"{path}: an SQLite database that is not an ishowd store (tables: {listed or 'none'}"
                        f"{f'; Alembic revision {rev}' if rev else ''}): ishowd does not take over another "
                        "program's database; point [storage] path at another file")
    if rev not in known_revisions():
        raise SchemaTooNew(
            f"{path}: the store's schema (revision {rev}) is newer than this ishowd knows "
            f"(up to {head()}); upgrade ishowd, or point [storage] path at another file. "
            "The store was not touched.")
    return rev


def quick_check(conn: sqlite3.Connection, path: str) -> None:
    """Refuse a store SQLite finds damaged (``PRAGMA quick_check``: every page and record, not
    the indexes against their tables)."""
    problems = _check(conn, path, "quick_check", 3)
    if problems:
        raise damaged(path, "quick_check: " + "; ".join(problems[:3])
                      + (f" and {len(problems) - 3} more" if len(problems) > 3 else ""))


def integrity_problems(path: str, limit: int = 100) -> list[str]:
    """What SQLite finds wrong with the store, one line each (up to ``limit``; none: it is sound).
    Either check gives up with "malformed" on some damage once it has listed enough of the rest,
    so a shorter list is asked for until one comes back."""
    conn, _ = open_for_reading(path)
    try:
        problems = _check(conn, path, "integrity_check", limit)
        for shorter in (limit, 10, 3, 1):
            if problems != [_UNREADABLE]:
                break
            problems = _check(conn, path, "quick_check", shorter)
        return problems
    finally:
        conn.close()


_UNREADABLE = "database disk image is malformed"


def _check(conn: sqlite3.Connection, path: str, pragma: str, limit: int) -> list[str]:
    """The problems a check pragma reports, one per line (SQLite puts several in one row)."""
    try:
        rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}({int(limit)})")]
    except sqlite3.DatabaseError as exc:
        if sqlite_kind(exc) in ("CORRUPT", "NOTADB"):
            return [str(exc)]
        raise explain(exc, path) from None
    if rows == ["ok"]:
        return []
    return [line for row in rows for line in str(row).splitlines() if line and not line.startswith("***")]


def explain(exc: sqlite3.Error, path: str, *, writing: bool = False) -> StoreError:
    """An sqlite3 error opening or reading the store, as a line for the operator."""
    kind = sqlite_kind(exc)
    if kind in ("CORRUPT", "NOTADB"):
        return damaged(path, str(exc))
    if kind in ("CANTOPEN", "IOERR", "READONLY"):
        where = _read_only_dir(path)
        if where:
            return StoreError(f"{path}: cannot open the store: {where}, and SQLite creates the store's -wal "
                              "and -shm files beside it: make it writable, or copy the store (with its -wal "
                              "file) to a writable directory and point [storage] path there")
    return StoreError(f"{path}: cannot {'write' if writing else 'read'} the store: {exc}")


def _read_only_dir(path: str) -> str | None:
    """Why the directory of ``path`` cannot take new files, if it cannot (None: it can)."""
    where = os.path.dirname(os.path.abspath(path))
    try:
        if os.statvfs(where).f_flag & os.ST_RDONLY:
            return f"{where} is on a read-only file system"
    except OSError:
        return None
    if not os.access(where, os.W_OK | os.X_OK):
        return f"{where} is not writable by this user"
    return None


def open_for_reading(path: str) -> tuple[sqlite3.Connection, str]:
    """A read-only connection to the ishowd store at ``path`` and its revision, refusing what is
    not one, and saying so when there is none yet."""
    from .errors import NoStore
    if not check_file(path):
        if not os.path.exists(path):
            raise NoStore(f"no store at {path}: start the daemon (`ishowd run`) or set [storage] path")
        raise NoStore(f"{path}: the store is empty (the daemon has not written yet)")
    try:
        conn = open_ro(path)
        conn.execute("PRAGMA query_only=1")
    except sqlite3.Error as exc:
        raise explain(exc, path) from None
    try:
        rev = identify(conn, path)
    except BaseException:
        conn.close()
        raise
    if rev is None:
        conn.close()
        raise NoStore(f"{path}: the store is empty (the daemon has not written yet)")
    return conn, rev


def inspect(path: str, *, thorough: bool = False) -> str | None:
    """The revision of the store at ``path`` (None: nothing there yet, an empty file or an empty
    database), refusing anything that is not a usable ishowd store, without changing it.
    ``thorough`` adds ``quick_check`` (the daemon's start)."""
    if not check_file(path):
        return None
    try:
        conn = open_ro(path)
    except sqlite3.Error as exc:
        raise explain(exc, path) from None
    try:
        rev = identify(conn, path)
        if thorough and rev is not None:
            quick_check(conn, path)
    finally:
        conn.close()
    return rev


# --- migrating -----------------------------------------------------------------------------

def _prepare_new(path: str) -> None:
    """Page size and WAL must be set before the first table exists."""
    try:
        conn = sqlite3.connect(path)
        try:
            if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
                conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
                conn.execute("VACUUM")  # applies the page size to the empty file
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise explain(exc, path, writing=True) from None


def upgrade(path: str) -> tuple[str | None, str]:
    """Bring the store at ``path`` to the head revision, in this process (imports Alembic). A
    damaged store is refused before anything is written to it."""
    before = inspect(path, thorough=True)
    target = head()
    if before == target:
        return before, target
    _prepare_new(path)
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import create_engine

    from sqlalchemy import event

    engine = create_engine(f"sqlite:///{path}")

    # All the pending revisions and alembic_version in one SQLite transaction, so that a kill
    # leaves the store as it was or migrated, never half made (then refused at every later start
    # as not an ishowd store). pysqlite's own transaction handling does not cover DDL the way
    # SQLite can: hand it to SQLite (SQLAlchemy's documented recipe for pysqlite).
    @event.listens_for(engine, "connect")
    def _no_pysqlite_transactions(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

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

    before = inspect(path)
    if before == head():
        return before, before
    # cwd "/": `python -m` puts the working directory first on sys.path, and a stray timeit.py
    # or alembic.py where ishowd was started would shadow the real one in the child
    proc = subprocess.run([sys.executable, "-m", "ishowd.store.migrate", os.path.abspath(path)],
                          capture_output=True, text=True, cwd="/")
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
