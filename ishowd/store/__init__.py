"""The SQLite time-series store.

Layout (the schema itself is ``schema.py``, applied by the Alembic migrations
under the top-level ``migrations/``):

- ``samples``: the head, raw samples of the last hour or two, clustered by
  time so a tick's commit dirties one or two pages, not one per series;
- ``chunks``: sealed hours, one compressed blob per series and hour (``raw``
  samples and ``1m`` per-minute rollups; see ``codec.py``);
- ``rollup_hour``: per-hour min/max/sum/count, kept forever by default.

``writer.py`` is the daemon's (the only writer); ``reader.py`` is what the
CLI uses, read-only and through the stdlib ``sqlite3`` so it starts fast.
"""
