"""Reading alert state and history from the store: stdlib sqlite3 only (the CLI's path).

Used by ``ishowctl alerts``, ``ishowctl check`` and the status provider over
a ``store.reader.Reader`` connection. A store without the alert tables (not
yet upgraded) reads as "no alerts".
"""
from __future__ import annotations

import sqlite3
from typing import NamedTuple, Optional

from ..metrics import parse_labels_key as _labels
from ..store import sql
from ..timefmt import iso
from ..units import finite as _finite
from .rules import SEVERITY_RANK


class ActiveAlert(NamedTuple):
    rule: str
    labels: dict
    metric: str
    state: str
    severity: str
    active_since: float
    fired_at: Optional[float]
    value: Optional[float]
    summary: str

    @property
    def since(self) -> float:
        return self.fired_at if self.fired_at is not None else self.active_since

    def as_json(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "since": iso(self.since),
                "value": _finite(self.value), "labels": self.labels, "summary": self.summary,
                "metric": self.metric, "state": self.state, "active_since": iso(self.active_since)}


class Event(NamedTuple):
    id: int
    ts: float
    rule: str
    labels: dict
    metric: str
    state: str
    severity: str
    value: Optional[float]
    since: float
    summary: str
    hooks: list      # the hook runs of the event, filled in by history()

    def as_json(self) -> dict:
        return {"ts": iso(self.ts), "rule": self.rule, "state": self.state, "severity": self.severity,
                "value": _finite(self.value), "labels": self.labels, "metric": self.metric,
                "since": iso(self.since), "summary": self.summary, "hooks": self.hooks}


def active(conn: sqlite3.Connection, *, pending: bool = False) -> list[ActiveAlert]:
    """Firing alerts (and pending ones when asked), most severe first, then oldest first."""
    try:
        rows = conn.execute(sql.ALERT_STATE_ALL).fetchall()
    except sqlite3.OperationalError:  # a store from before the alert tables
        return []
    out = [ActiveAlert(r[0], _labels(r[1]), r[2], r[3], r[4], r[5] / 1e6,
                       None if r[6] is None else r[6] / 1e6, r[7], r[8])
           for r in rows if pending or r[3] == "firing"]
    out.sort(key=lambda a: (a.state != "firing", -SEVERITY_RANK.get(a.severity, -9), a.since, a.rule,
                            sorted(a.labels.items())))
    return out


def history(conn: sqlite3.Connection, limit: Optional[int] = None) -> list[Event]:
    """Alert events with their hook runs, oldest first (the newest ``limit`` when given)."""
    try:
        rows = conn.execute(sql.ALERT_EVENTS_NEWEST, {"limit": limit or -1, "offset": 0}).fetchall()
    except sqlite3.OperationalError:
        return []
    events = [Event(r[0], r[1] / 1e6, r[2], _labels(r[3]), r[4], r[5], r[6], r[7], r[8] / 1e6, r[9], [])
              for r in reversed(rows)]
    if events:
        by_id = {e.id: e for e in events}
        for eid, hook, attempt, started, duration, status, code, output in conn.execute(
                sql.HOOK_RUNS_FROM, {"event_id": min(by_id)}):
            e = by_id.get(eid)
            if e is not None:
                e.hooks.append({"hook": hook, "attempt": attempt, "started": iso(started / 1e6),
                                "seconds": duration, "status": status, "exit_code": code, "output": output})
    return events
