"""The SQLite time-series store.

Layout (the schema itself is ``schema.py``, applied by the Alembic migrations
under the top-level ``migrations/``):

- ``head``: raw samples of the last hour or two, one row per tick, clustered by
  time so a tick's commit dirties one or two pages, not one per series;
- ``chunks``: sealed data, compressed (``codec.py``): per series, one ``raw``
  blob of samples and one ``1m`` blob of per-minute rollups per hour, and one
  ``1h`` blob of per-hour rollups per day (kept forever by default).

``writer.py`` is the daemon's (the only writer); ``reader.py`` is what the
CLI uses, read-only and through the stdlib ``sqlite3`` so it starts fast.
"""
