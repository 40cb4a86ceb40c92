"""``ishowctl db``: the store's schema and soundness."""
from __future__ import annotations

import click

from .app import pass_app


@click.group()
def db() -> None:
    """The store's schema (migrations) and soundness."""


@db.command()
@pass_app
def upgrade(app) -> None:
    """Apply pending schema migrations to the store (the daemon also does this at start)."""
    import os

    from ..paths import store_path
    from ..store.errors import StoreError
    from ..store.migrate import upgrade as do_upgrade

    path = store_path(app.config)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create its directory ({exc.strerror}): create it or set "
                         "[storage] path") from None
    before, after = do_upgrade(path)
    if before == after:
        click.echo(f"{path}: already at revision {after}")
    else:
        click.echo(f"{path}: upgraded from {before or 'empty'} to revision {after}")


@db.command()
@pass_app
def check(app) -> None:
    """Look for damage in the store (SQLite's integrity_check; read-only, safe while the daemon runs).

    Prints each problem found and exits 65 when there is any; the store is never changed.
    """
    from ..paths import store_path
    from ..store.errors import damaged
    from ..store.migrate import integrity_problems

    path = store_path(app.config)
    problems = integrity_problems(path)
    if not problems:
        click.echo(f"{path}: no damage found")
        return
    for problem in problems:
        click.echo(problem)
    raise damaged(path, f"{len(problems)} problem{'s' if len(problems) > 1 else ''} found, "
                        "listed above", listed=True)
