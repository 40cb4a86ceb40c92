"""``ishowctl db``: the store's schema."""
from __future__ import annotations

import click

from .app import pass_app


@click.group()
def db() -> None:
    """The store's schema (migrations)."""


@db.command()
@pass_app
def upgrade(app) -> None:
    """Apply pending schema migrations to the store (the daemon also does this at start)."""
    from ..paths import store_path
    from ..store.migrate import upgrade as do_upgrade
    from pathlib import Path

    path = store_path(app.config)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    before, after = do_upgrade(path)
    if before == after:
        click.echo(f"{path}: already at revision {after}")
    else:
        click.echo(f"{path}: upgraded from {before or 'empty'} to revision {after}")
