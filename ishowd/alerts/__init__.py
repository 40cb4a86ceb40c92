"""Alerts: rules judged after every tick, their state kept in the store, hooks run off the tick.

- ``rules``: the ``[alerts]`` / ``[[alerts.rules]]`` / ``[[alerts.hooks]]`` keys, parsed
  and validated into ``Rule`` and ``Hook`` objects (a bad rule fails at start, exit 78);
- ``engine``: the per-series state machine (inactive → pending → firing → resolved)
  and the in-memory windows that keep evaluation cheap;
- ``hooks``: the bounded pool that runs hook commands with timeouts and retries;
- ``state``: the store tables' reads (stdlib sqlite3, for the CLI).

This package never imports SQLAlchemy at import time: the CLI loads ``rules``
through the config schema on every start.
"""
