"""The daemon's side of alerts: the engine fed from the store, its state kept there, hooks run.

It runs the SQL of ``store/sql.py`` through the writer's sqlite3 connection
(the daemon never loads SQLAlchemy). Evaluation after a tick reads nothing
from the store in the steady state:
every sample write reaches the engine through ``Store.observers`` (the
tick's, and the per-request ones log ingestion stamps in the past), and the
windows are loaded from the store once, when a series is first judged. Only
state changes write (one transaction), so a quiet tick costs a few dozen
microseconds whatever the store holds.
"""
from __future__ import annotations

import collections
import logging
import socket
from typing import Optional

from ..metrics import labels_text as _labels_text, parse_labels_key
from ..logbudget import LogBudget
from ..settings import stale_window
from ..store import codec, sql
from ..timefmt import iso, to_us
from .engine import AlertState, Change, Engine
from .hooks import HookRunner, RunResult
from .rules import Hook, hooks_of, number, rules_of

log = logging.getLogger("ishowd.alerts")
HOUR = 3600


class Evaluator:
    def __init__(self, config, store, *, host: Optional[str] = None):
        self.config = config
        self.store = store
        self.rules = rules_of(config)
        self.hooks = hooks_of(config, {r.name for r in self.rules})
        self.stale = stale_window(config)  # a latest value older than this is absent
        self.engine = Engine(self.rules, self.stale)
        self.host = host or socket.gethostname()
        a = config.alerts
        self.said = LogBudget(log, "alert changes")
        self.runner = HookRunner(self._record_run, workers=a.hook_workers, queue=a.hook_queue,
                                 retry_delay=a.hook_retry_delay, kill_grace=a.hook_kill_grace,
                                 output_lines=a.hook_output_lines)
        self._queue: collections.deque = collections.deque()
        self._known: set[int] = set()
        self._started = False
        with store.lock:
            # the newest sample before this start: a longer gap than `stale` ends pending holds
            self._last_write = store.db.execute(sql.HEAD_MAX_TS).fetchone()[0]
        store.observers.append(self._observe)

    # --- samples -----------------------------------------------------------------

    def _observe(self, by_ts: dict) -> None:
        self._queue.append(by_ts)  # deque.append is atomic: writers in other threads are fine

    def _load(self, conn, sids: list[int], now: float) -> None:
        """Feed newly judged series what their windows need from the store (chunks, then the head)."""
        since = {sid: now - self.engine.lookback(sid) for sid in sids}
        for sid in sids:
            start = int(since[sid])
            for (blob,) in conn.execute(sql.CHUNKS_RANGE, {"series_id": sid, "kind": "raw",
                                                           "since": start - start % HOUR, "until": 1 << 62}):
                ts, (vals,) = codec.decode(blob)
                for t, v in zip(ts, vals):
                    if t >= start:
                        self.engine.feed(sid, t, v)
        low = int(min(since.values()))
        for t, blob in conn.execute(sql.HEAD_SINCE, {"since": low}):  # in write order: the first value wins
            for sid, v in codec.unpack_tick(blob):
                s = since.get(sid)
                if s is not None and t >= s:
                    self.engine.feed(sid, t, v)

    def _add_series(self, sid: int, name: str, labels: str) -> bool:
        """Judge a series if a rule wants it; True when it needs loading."""
        self._known.add(sid)
        if name not in self.engine.by_metric:
            return False
        return self.engine.add_series(sid, name, parse_labels_key(labels), labels) is not None

    def _start(self, now: float) -> None:
        with self.store.transaction() as conn:
            states = []
            for r in conn.execute(sql.ALERT_STATE_ALL):
                states.append(AlertState(
                    rule=r[0], key=r[1], labels=parse_labels_key(r[1]), metric=r[2], state=r[3], severity=r[4],
                    active_since=r[5] / 1e6, fired_at=None if r[6] is None else r[6] / 1e6, value=r[7],
                    summary=r[8], event_id=r[9]))
            drop = self.engine.restore(states)
            for st in drop:
                log.info("alert %s%s (%s) dropped: its rule is gone or no longer judges that series",
                         st.rule, _labels_text(st.labels), st.state)
            if self._last_write is None or now - self._last_write > self.stale:
                drop += self.engine.forget_pending()
            for st in drop:
                conn.execute(sql.ALERT_STATE_DELETE, {"rule": st.rule, "labels": st.key})
            firing = self.engine.active()
            if firing:
                log.info("still firing from before the restart (hooks not run again): %s",
                         ", ".join(st.rule + _labels_text(st.labels) for st in firing))
            load = [sid for sid, name, labels in conn.execute(sql.SERIES_ALL).fetchall()
                    if self._add_series(sid, name, labels)]
            if load:
                self._load(conn, load, now)
        judged = {r.name for sd in self.engine.series.values() for r in sd.rules}
        quiet = [f"{r.name} ({r.metric}{_labels_text(r.labels)})" for r in self.rules if r.name not in judged]
        if quiet:
            log.info("alert rules with no series on this host yet (metric not collected here?); they stay "
                     "quiet until one appears: %s", ", ".join(quiet))
        self._started = True

    def _drain(self, now: float) -> None:
        series, known, unknown = self.engine.series, self._known, []
        queue = self._queue
        while queue:
            for t, pairs in queue.popleft().items():
                for sid, v in pairs:
                    sd = series.get(sid)
                    if sd is not None:
                        sd.add(t, v)
                    elif sid not in known:
                        unknown.append((sid, t, v))
        if unknown:
            with self.store.transaction() as conn:
                load = []
                for sid in sorted({u[0] for u in unknown}):
                    row = conn.execute(sql.SERIES_BY_ID, {"id": sid}).fetchone()
                    if row is not None and self._add_series(sid, row[0], row[1]):
                        load.append(sid)
                if load:
                    self._load(conn, load, now)
            for sid, t, v in unknown:
                self.engine.feed(sid, t, v)

    # --- evaluation ------------------------------------------------------------------

    def run(self, now: float) -> list[Change]:
        """Evaluate every rule at ``now`` (after a tick); persist changes, queue hooks."""
        if not self._started:
            self._start(now)
        self._drain(now)
        self.said.flush()
        self.runner.said.flush()
        changes = self.engine.evaluate(now)
        if changes:
            self._persist(changes, now)
        return changes

    def _persist(self, changes: list[Change], now: float) -> None:
        fired = []
        with self.store.transaction() as conn:
            for ch in changes:
                st = ch.alert
                if ch.kind in ("cleared", "resolved"):
                    conn.execute(sql.ALERT_STATE_DELETE, {"rule": st.rule, "labels": st.key})
                if ch.kind in ("firing", "resolved"):
                    eid = conn.execute(sql.ALERT_EVENT_INSERT, {
                        "ts": to_us(now), "rule": st.rule, "labels": st.key, "metric": st.metric,
                        "state": ch.kind, "severity": st.severity,
                        "value": st.value if ch.kind == "firing" else ch.value,
                        "since": to_us(st.fired_at), "summary": st.summary}).lastrowid
                    if ch.kind == "firing":
                        st.event_id = eid
                    fired.append((ch, eid))
                if ch.kind in ("pending", "firing"):
                    conn.execute(sql.ALERT_STATE_PUT, {
                        "rule": st.rule, "labels": st.key, "metric": st.metric, "state": st.state,
                        "severity": st.severity, "active_since": to_us(st.active_since),
                        "fired_at": to_us(st.fired_at), "value": st.value, "summary": st.summary,
                        "event_id": st.event_id})
        for ch, eid in fired:
            st = ch.alert
            rule = self.engine.rule_by_name[st.rule]
            if ch.kind == "firing":
                self.said.log(logging.WARNING, "alert %s%s firing (%s): %s, value %s%s", st.rule,
                              _labels_text(st.labels), st.severity, rule.describe(), number(st.value),
                              f": {st.summary}" if st.summary else "")
            else:
                self.said.log(logging.INFO, "alert %s%s resolved: value %s", st.rule, _labels_text(st.labels),
                              number(ch.value))
            payload = self.payload(ch, rule)
            for hook in self.hooks:
                if hook.wants(st.rule, st.severity):
                    self.runner.submit(hook, payload, eid)

    def payload(self, ch: Change, rule) -> dict:
        """The alert as a hook gets it (stdin JSON; the same as ISHOWD_ALERT_* variables)."""
        st = ch.alert
        return {
            "rule": st.rule,
            "state": ch.kind,
            "severity": st.severity,
            "value": st.value if ch.kind == "firing" else ch.value,
            "labels": st.labels,
            "since": iso(st.fired_at),
            "summary": st.summary,
            "host": self.host,
            "metric": st.metric,
            "condition": rule.describe(),
            "ended": iso(ch.ts) if ch.kind == "resolved" else None,
        }

    def _record_run(self, event_id: int, hook: Hook, attempt: int, result: RunResult) -> None:
        with self.store.transaction() as conn:
            conn.execute(sql.HOOK_RUN_INSERT, {
                "event_id": event_id, "hook": hook.name, "attempt": attempt, "started": to_us(result.started),
                "duration": round(result.duration, 6), "status": result.status, "exit_code": result.exit_code,
                "output": result.output})

    def close(self, wait: Optional[float] = None) -> None:
        try:
            self.store.observers.remove(self._observe)
        except ValueError:
            pass
        self.runner.close(wait)

