"""The default rule set fires and resolves at the right moments over a recorded day of a deployment."""
from __future__ import annotations

import logging

from alerts_helpers import db, make_config, open_store, sample
from ishowd.alerts.evaluator import Evaluator

T0 = 1_790_002_800   # on an hour boundary + 47 min, so sealing happens mid-run


def gpu_temp(t):
    return 70.0 if t < 120 else 82.0 if t < 300 else 77.0 if t < 420 else 70.0


def locked(t):
    return 0.0 if 600 <= t < 840 or 900 <= t < 1500 else 1.0


def tick_batch(t: int) -> list:
    batch = [
        sample("gpu_temperature_celsius", gpu_temp(t), gpu="gpu0"),
        sample("gpu_frequency_locked", locked(t), gpu="gpu0"),
        sample("backend_up", 0.0 if 1800 <= t < 1990 else 1.0),
        sample("memory_available_bytes", 4e9 if 2100 <= t < 2200 else 8e9),
        sample("backend_log_errors_total", 3.0 if t >= 2400 else 0.0, level="ERROR"),
        sample("backend_rss_bytes", 1.5e9 if t >= 3300 else 2.06e9),
        # the backup's last run failed from 5000 s to 5600 s; the benchmark is overdue from 6000 s
        sample("backend_compile_fallbacks_total", 1.0 if t >= 4000 else 0.0),   # compilation failed at 4000 s
        sample("ishowd_job_success", 0.0 if 5000 <= t < 5600 else 1.0, job="backup"),
        sample("ishowd_job_overdue", 1.0 if t >= 6000 else 0.0, job="benchmark"),
    ]
    if t % 60 == 0 and not 3000 <= t < 3200:     # one normal request a minute
        batch.append(sample("tts_rtf", 0.28, T0 + t - 5, engine="f5", voice="walter", source="api"))
    if 3000 <= t < 3200:                          # a burst of slow requests
        batch.append(sample("tts_rtf", 0.9, T0 + t - 5, engine="f5", voice="walter", source="api"))
    if t % 60 == 30:                              # live chat is slower (NFE 16) and is not judged
        batch.append(sample("tts_rtf", 0.9, T0 + t - 5, engine="f5", voice="walter", source="chat"))
    return batch


def test_the_defaults_fire_and_resolve_on_time(tmp_path, caplog):
    cfg = make_config(tmp_path)          # no [[alerts.rules]]: the built-in set
    store = open_store(cfg)
    # a day of history before the daemon starts: the backend grew by 60 MB over 25 hours
    for i in range(25 * 12 + 1):
        ts = T0 - 25 * 3600 + i * 300
        store.write(ts, [sample("backend_rss_bytes", 2.0e9 + 60e6 * i / 300)])
    store.maintain(T0)
    caplog.set_level(logging.INFO, logger="ishowd.alerts")
    ev = Evaluator(cfg, store)
    try:
        for t in range(0, 7000, 10):
            store.write(T0 + t, tick_batch(t))
            store.maintain(T0 + t)
            ev.run(T0 + t)
    finally:
        ev.close()
        store.close()
    with db(cfg) as conn:
        events = [(r[0], r[1], int(r[2] / 1e6) - T0, r[3]) for r in conn.execute(
            "SELECT rule, state, ts, severity FROM alert_events ORDER BY id")]
    rtf_resolved = [e for e in events if e[:2] == ("rtf-slow", "resolved")]
    assert len(rtf_resolved) == 1 and 6600 <= rtf_resolved[0][2] < 6800
    assert [e for e in events if e not in rtf_resolved] == [
        ("backend-memory-growth", "firing", 0, "warning"),
        ("gpu-hot", "firing", 180, "critical"),
        ("gpu-warm", "firing", 180, "warning"),
        ("gpu-hot", "resolved", 300, "critical"),
        ("gpu-warm", "resolved", 420, "warning"),
        ("gpu-unlocked", "firing", 1200, "warning"),     # the 4-minute lapse at 600 s stayed pending
        ("gpu-unlocked", "resolved", 1500, "warning"),
        ("backend-down", "firing", 1920, "critical"),
        ("backend-down", "resolved", 1990, "critical"),
        ("memory-low", "firing", 2160, "warning"),
        ("memory-low", "resolved", 2200, "warning"),
        ("backend-log-errors", "firing", 2400, "info"),
        ("backend-log-errors", "resolved", 3000, "info"),
        ("rtf-slow", "firing", 3060, "warning"),          # the 7th slow request lifts the hour's mean past 0.35
        ("backend-memory-growth", "resolved", 3300, "warning"),
        ("backend-compile-fallback", "firing", 4000, "warning"),
        ("job-failed", "firing", 5000, "warning"),
        ("job-failed", "resolved", 5600, "warning"),
        ("job-overdue", "firing", 6000, "warning"),
    ]
    assert "no series on this host" not in caplog.text


def test_on_a_plain_machine_the_gpu_rules_stay_quiet_and_say_so_once(tmp_path, caplog):
    cfg = make_config(tmp_path)
    store = open_store(cfg)
    caplog.set_level(logging.INFO, logger="ishowd.alerts")
    ev = Evaluator(cfg, store)
    try:
        for t in range(0, 600, 10):
            store.write(T0 + t, [sample("memory_available_bytes", 8e9), sample("backend_up", 1.0)])
            ev.run(T0 + t)
    finally:
        ev.close()
        store.close()
    quiet = [r.getMessage() for r in caplog.records if "no series on this host" in r.getMessage()]
    assert len(quiet) == 1
    for part in ("gpu-hot (gpu_temperature_celsius)", "gpu-warm", "gpu-unlocked (gpu_frequency_locked)",
                 "rtf-slow (tts_rtf{source=api})"):
        assert part in quiet[0]
    assert "memory-low" not in quiet[0] and "backend-down" not in quiet[0]
    with db(cfg) as conn:
        assert conn.execute("SELECT count(*) FROM alert_events").fetchone()[0] == 0

