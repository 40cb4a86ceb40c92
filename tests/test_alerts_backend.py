"""The default backend rules against the stand-in backend, through the daemon's own tick.

The stand-in writes the real log format to a real file and answers
/api/health on 127.0.0.1; the daemon ingests the log and probes it as in
production. Ticks are ten seconds of the log's own (synthetic) time, laid
within the last two hours so the records are live data, not a backlog; only
the health probe runs on real time, and the test waits for its answer
whenever the backend goes down or comes back.
"""
from __future__ import annotations

import time

from alerts_helpers import db, wait_for
from hw_helpers import board_root, toml_text
from ishowd import catalog
from ishowd.daemon import Daemon
from standin_backend import Clock, StandinBackend, line_event

NORMAL, SLOW = 0.28, 0.60


def test_default_backend_rules_fire_and_resolve(tmp_path):
    # 22 minutes of log time that have already passed and stay live data (this hour or the last)
    # even if the real clock crosses an hour boundary while the test runs
    now = int(time.time())
    hour = now - now % 3600
    t0 = hour + 60 if now - hour > 25 * 60 else hour - 3600 + 60
    clock = Clock(start_us=t0 * 1_000_000)
    log = tmp_path / "backend.log"
    backend = StandinBackend(log, clock=clock).start()
    path = tmp_path / "ishowd.toml"
    path.write_text(toml_text(board_root("x86-plain")) + f'''
[storage]
path = "{tmp_path / 'ishowd.db'}"
[exporter]
listen = ""
[rtf]
logs = ["{log}"]
[backend]
url = "{backend.url}"
health_interval = "1s"
''')
    daemon = Daemon(catalog.load_config(str(path)))           # the built-in default rules
    ingest = next(t for t in daemon.tasks if t.name == "log-ingest")
    probe = next(c for c in daemon.collectors if c.name == "backend")

    def tick(i: int, rtf: float | None = NORMAL, warn: bool = False) -> None:
        t = t0 + 10 * i
        clock.now = t * 1_000_000
        if rtf is not None:
            backend.synth(rtf=rtf)
        if warn:
            backend.write(line_event(clock(), "warmup failed", level="WARN"))
        ingest.run(t)
        daemon.tick(t)

    try:
        for i in range(0, 30):
            tick(i)                                       # five quiet minutes
        for i in range(30, 42):
            tick(i, SLOW, warn=(i == 40))                 # twelve slow requests, one WARN line
        for i in range(42, 110):
            tick(i)                                       # normal again
        backend.stop_http()
        wait_for(lambda: probe.up() == 0.0, what="the probe to see the backend down")
        for i in range(110, 130):
            tick(i, rtf=None)                             # down for over two minutes
        backend.resume_http()
        wait_for(lambda: probe.up() == 1.0, what="the probe to see the backend up")
        tick(130)
    finally:
        daemon.close()
        backend.stop()
    with db(daemon.config) as conn:
        events = [(rule, state, (ts // 1_000_000 - t0) // 10) for rule, state, ts in conn.execute(
            "SELECT rule, state, ts FROM alert_events ORDER BY id")]
    # rtf-slow: the hour's mean of API requests, (30 x 0.28 + k x 0.60) / (30 + k) > 0.35 first at k = 9;
    # after the twelve slow ones, it is back to <= 0.35 after 13 normal ones.
    assert ("rtf-slow", "firing", 38) in events and ("rtf-slow", "resolved", 54) in events
    # backend-log-errors: an increase within 10 minutes, from the WARN line on
    assert ("backend-log-errors", "firing", 40) in events
    resolved = [e[2] for e in events if e[:2] == ("backend-log-errors", "resolved")]
    assert resolved and 100 <= resolved[0] <= 102, events      # once the line is out of the window
    # backend-down: down from tick 110, firing once it has held two minutes, resolved when it answers
    assert ("backend-down", "firing", 122) in events and ("backend-down", "resolved", 130) in events
    assert {e[0] for e in events} == {"rtf-slow", "backend-log-errors", "backend-down"}
    assert len(events) == 6
