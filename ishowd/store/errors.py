"""Store errors, phrased for operators (the programs print them without a traceback).

Exit codes: 65 (EX_DATAERR) when what is at ``[storage] path`` is not a
store this ishowd can use (a newer schema, another program's file, a damaged
one): restarting will not help, systemd's ``RestartPreventExitStatus`` stops
there. 1 for the rest (no store yet, a read-only or unreachable directory,
another writer): those can pass.
"""

from __future__ import annotations

EX_DATAERR = 65


class StoreError(Exception):
    exit_code = 1


class SchemaTooNew(StoreError):
    exit_code = EX_DATAERR


class NoStore(StoreError):
    exit_code = 1


class NotAStore(StoreError):
    """Something is at the path, but not an ishowd store: a directory, random bytes, another
    program's database. Left as it is."""
    exit_code = EX_DATAERR


class StoreDamaged(StoreError):
    """An ishowd store SQLite finds damaged. Keeping it aside and starting anew is the operator's call."""
    exit_code = EX_DATAERR


# SQLite's messages for its primary result codes (sqlite3ErrStr), for Python 3.10, whose
# sqlite3 errors carry no ``sqlite_errorname``.
_KIND_OF_MESSAGE = {
    "database or disk is full": "FULL",
    "disk I/O error": "IOERR",
    "database disk image is malformed": "CORRUPT",
    "file is not a database": "NOTADB",
    "unable to open database file": "CANTOPEN",
    "attempt to write a readonly database": "READONLY",
    "database is locked": "BUSY",
    "database table is locked": "LOCKED",
}

# Result codes that say something about the file or the disk rather than about a query:
# a write failing with one of them fails for every writer until the cause goes away.
STORAGE_KINDS = frozenset({"FULL", "IOERR", "CORRUPT", "NOTADB", "CANTOPEN", "READONLY", "BUSY", "LOCKED"})


def sqlite_kind(exc: BaseException) -> str | None:
    """SQLite's primary result code of an ``sqlite3.Error`` without its prefix ("FULL", "IOERR"), if known."""
    name = getattr(exc, "sqlite_errorname", None)  # Python 3.11 and later
    if name:
        return name.split("_")[1]
    message = str(exc)
    if message.startswith("malformed database schema"):
        return "CORRUPT"
    return _KIND_OF_MESSAGE.get(message)


def is_storage_failure(exc: BaseException) -> bool:
    """An sqlite3 error that the disk or the file caused (full, I/O, read-only, damaged)."""
    return type(exc).__module__ == "sqlite3" and sqlite_kind(exc) in STORAGE_KINDS


def damaged(path: str, detail: str, *, listed: bool = False) -> StoreDamaged:
    """``listed``: the damage was just printed (``ishowctl db check``), so do not send there for it."""
    return StoreDamaged(
        f"{path}: the store is damaged ({detail}): {'' if listed else '`ishowctl db check` lists what; '}"
        f"to start a new store, stop ishowd and move the file aside with its -wal file if there is one "
        f"(mv {path} {path}.damaged; mv {path}-wal {path}.damaged-wal), or try to salvage it with "
        f"`sqlite3 {path} .recover`; ishowd never replaces it by itself")


def from_sqlite(exc: BaseException) -> StoreError | None:
    """An sqlite3 error about the file or the disk that reached a program's top (a query that read
    a damaged page), as the operator's line; None for any other error."""
    if not is_storage_failure(exc):
        return None
    if sqlite_kind(exc) in ("CORRUPT", "NOTADB"):
        return StoreDamaged(f"the store is damaged ({exc}): `ishowctl db check` names it, lists the damage "
                            "and says what to do")
    return StoreError(f"cannot read the store: {exc}")
