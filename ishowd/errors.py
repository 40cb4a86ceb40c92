"""The one mapping from an operator-facing error to a message and an exit code, for both programs.

``ConfigError`` exits 78 (EX_CONFIG: systemd's ``RestartPreventExitStatus`` stops
retrying it); a store error carries its own code (65 for a file that is not a
usable store, 1 otherwise), and so does an sqlite3 error that the file or the
disk caused (a damaged page met by a query). Anything else is a bug and is not
mapped here.
"""
from __future__ import annotations

from typing import Optional

from .config import EX_CONFIG, ConfigError
from .store.errors import StoreError, from_sqlite


def exit_for(exc: BaseException) -> Optional[tuple[int, str]]:
    """(exit code, one-line message) for an error meant for the operator, else None."""
    if isinstance(exc, ConfigError):
        return EX_CONFIG, f"configuration error: {exc}"
    if isinstance(exc, StoreError):
        return exc.exit_code, str(exc)
    store_error = from_sqlite(exc)
    if store_error is not None:
        return store_error.exit_code, str(store_error)
    return None
