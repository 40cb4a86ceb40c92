"""Alembic environment: ishowd runs it in-process (ishowd.store.migrate)."""
from alembic import context

from ishowd.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - `alembic` CLI use: ishowd always passes one
    raise SystemExit("run migrations with `ishowctl db upgrade`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
