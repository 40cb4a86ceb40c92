"""The daemon's side of alerts: the engine fed from the store, its state kept there, hooks run.

Evaluation after a tick reads nothing from the store in the steady state:
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

from sqlalchemy import and_, delete, insert, select

from ..metrics import parse_labels_key
from ..store.schema import alert_events, alert_state, chunks, hook_runs, samples, series
from .engine import AlertState, Change, Engine
from .hooks import HookRunner, RunResult
from .rules import Hook, hooks_of, number, rules_of
from .state import iso, to_us

log = logging.getLogger("ishowd.alerts")
HOUR = 3600


def stale_after(config) -> float:
    """A latest value older than this is absent (a sensor that went away, a stopped daemon)."""
    return max(3 * config.sampling.interval, 90.0)


class Evaluator:
    def __init__(self, config, store, *, host: Optional[str] = None):
        self.config = config
        self.store = store
        self.rules = rules_of(config)
        self.hooks = hooks_of(config, {r.name for r in self.rules})
        self.stale = stale_after(config)
        self.engine = Engine(self.rules, self.stale)
        self.host = host or socket.gethostname()
        a = config.alerts
        self.runner = HookRunner(self._record_run, workers=a.hook_workers, queue=a.hook_queue,
                                 retry_delay=a.hook_retry_delay, kill_grace=a.hook_kill_grace,
                                 output_lines=a.hook_output_lines)
        self._queue: collections.deque = collections.deque()
        self._known: set[int] = set()
        self._started = False
        with store.transaction() as conn:
            # the newest sample before this start: a longer gap than `stale` ends pending holds
            self._last_write = conn.execute(select(samples.c.ts).order_by(samples.c.ts.desc()).limit(1)).scalar()
        store.observers.append(self._observe)

    # --- samples -----------------------------------------------------------------

    def _observe(self, rows: list) -> None:
        self._queue.append(rows)  # deque.append is atomic: writers in other threads are fine

    def _load(self, conn, sid: int, since: float) -> None:
        start = int(since) - int(since) % HOUR
        from ..store import codec
        for (blob,) in conn.execute(select(chunks.c.data).where(and_(
                chunks.c.series_id == sid, chunks.c.kind == "raw", chunks.c.start_ts >= start))
                .order_by(chunks.c.start_ts)):
            ts, (vals,) = codec.decode(blob)
            for t, v in zip(ts, vals):
                if t >= since:
                    self.engine.feed(sid, t, v)
        for t, v in conn.execute(select(samples.c.ts, samples.c.value).where(and_(
                samples.c.ts >= int(since), samples.c.series_id == sid)).order_by(samples.c.ts)):
            self.engine.feed(sid, t, v)

    def _add_series(self, conn, sid: int, name: str, labels: str, now: float) -> None:
        self._known.add(sid)
        if name not in self.engine.by_metric:
            return
        if self.engine.add_series(sid, name, parse_labels_key(labels), labels) is not None:
            self._load(conn, sid, now - self.engine.lookback(sid))

    def _start(self, now: float) -> None:
        with self.store.transaction() as conn:
            states = []
            for r in conn.execute(select(alert_state)).mappings():
                states.append(AlertState(
                    rule=r["rule"], key=r["labels"], labels=parse_labels_key(r["labels"]), metric=r["metric"],
                    state=r["state"], severity=r["severity"], active_since=r["active_since"] / 1e6,
                    fired_at=None if r["fired_at"] is None else r["fired_at"] / 1e6, value=r["value"],
                    summary=r["summary"], event_id=r["event_id"]))
            drop = self.engine.restore(states)
            for st in drop:
                log.info("alert %s%s (%s) dropped: its rule is gone or no longer judges that series",
                         st.rule, _labels_text(st.labels), st.state)
            if self._last_write is None or now - self._last_write > self.stale:
                drop += self.engine.forget_pending()
            for st in drop:
                conn.execute(delete(alert_state).where(and_(alert_state.c.rule == st.rule,
                                                            alert_state.c.labels == st.key)))
            firing = self.engine.active()
            if firing:
                log.info("still firing from before the restart (hooks not run again): %s",
                         ", ".join(st.rule + _labels_text(st.labels) for st in firing))
            for sid, name, labels in conn.execute(select(series.c.id, series.c.name, series.c.labels)):
                self._add_series(conn, sid, name, labels, now)
        judged = {r.name for sd in self.engine.series.values() for r in sd.rules}
        quiet = [f"{r.name} ({r.metric}{_labels_text(r.labels)})" for r in self.rules if r.name not in judged]
        if quiet:
            log.info("alert rules with no series on this host yet (metric not collected here?); they stay "
                     "quiet until one appears: %s", ", ".join(quiet))
        self._started = True

    def _drain(self, now: float) -> None:
        engine, unknown = self.engine, []
        queue = self._queue
        while queue:
            for r in queue.popleft():
                sid = r["series_id"]
                sd = engine.series.get(sid)
                if sd is not None:
                    sd.add(r["ts"], r["value"])
                elif sid not in self._known:
                    unknown.append(r)
        if unknown:
            with self.store.transaction() as conn:
                for sid in sorted({r["series_id"] for r in unknown}):
                    row = conn.execute(select(series.c.name, series.c.labels).where(series.c.id == sid)).first()
                    if row is not None:
                        self._add_series(conn, sid, row[0], row[1], now)
            for r in unknown:
                engine.feed(r["series_id"], r["ts"], r["value"])

    # --- evaluation ------------------------------------------------------------------

    def run(self, now: float) -> list[Change]:
        """Evaluate every rule at ``now`` (after a tick); persist changes, queue hooks."""
        if not self._started:
            self._start(now)
        self._drain(now)
        changes = self.engine.evaluate(now)
        if changes:
            self._persist(changes, now)
        return changes

    def _persist(self, changes: list[Change], now: float) -> None:
        fired = []
        with self.store.transaction() as conn:
            for ch in changes:
                st = ch.alert
                where = and_(alert_state.c.rule == st.rule, alert_state.c.labels == st.key)
                if ch.kind in ("cleared", "resolved"):
                    conn.execute(delete(alert_state).where(where))
                if ch.kind in ("firing", "resolved"):
                    st_value = st.value if ch.kind == "firing" else ch.value
                    eid = conn.execute(insert(alert_events).values(
                        ts=to_us(now), rule=st.rule, labels=st.key, metric=st.metric, state=ch.kind,
                        severity=st.severity, value=st_value, since=to_us(st.fired_at),
                        summary=st.summary)).inserted_primary_key[0]
                    if ch.kind == "firing":
                        st.event_id = eid
                    fired.append((ch, eid))
                if ch.kind in ("pending", "firing"):
                    conn.execute(insert(alert_state).prefix_with("OR REPLACE").values(
                        rule=st.rule, labels=st.key, metric=st.metric, state=st.state, severity=st.severity,
                        active_since=to_us(st.active_since), fired_at=to_us(st.fired_at), value=st.value,
                        summary=st.summary, event_id=st.event_id))
        for ch, eid in fired:
            st = ch.alert
            rule = self.engine.rule_by_name[st.rule]
            if ch.kind == "firing":
                log.warning("alert %s%s firing (%s): %s, value %s%s", st.rule, _labels_text(st.labels),
                            st.severity, rule.describe(), number(st.value),
                            f": {st.summary}" if st.summary else "")
            else:
                log.info("alert %s%s resolved: value %s", st.rule, _labels_text(st.labels), number(ch.value))
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
            conn.execute(insert(hook_runs).values(
                event_id=event_id, hook=hook.name, attempt=attempt, started=to_us(result.started),
                duration=round(result.duration, 6), status=result.status, exit_code=result.exit_code,
                output=result.output))

    def close(self, wait: float = 30.0) -> None:
        try:
            self.store.observers.remove(self._observe)
        except ValueError:
            pass
        self.runner.close(wait)


def _labels_text(labels: dict) -> str:
    return "{" + ",".join(f"{k}={v}" for k, v in labels.items()) + "}" if labels else ""
