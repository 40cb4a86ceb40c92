"""The jobs framework: calendar (cron meaning, DST, clock steps), one run at a time, timeouts, records."""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from ishowd import catalog
from ishowd.config import Section
from ishowd.jobs import DAY, Job, Outcome
from ishowd.jobs.cron import Crontab, crontab_problem
from ishowd.jobs.runner import JobRunner
from ishowd.schedule import CrontabTrigger
from ishowd.store.writer import Store

BERLIN = ZoneInfo("Europe/Berlin")


def local(*args, tz=BERLIN) -> float:
    return datetime(*args, tzinfo=tz).timestamp()


def fires(crontab: Crontab, start: float, end: float, tz) -> list[str]:
    """Every fire time in [start, end), as the scheduler would ask for them, in local ISO."""
    trigger = CrontabTrigger(crontab, tz)
    out, now = [], datetime.fromtimestamp(start, timezone.utc)
    prev = None
    while True:
        nxt = trigger.get_next_fire_time(prev, now)
        if nxt.timestamp() >= end:
            return out
        trigger.fired(nxt.timestamp())
        out.append(datetime.fromtimestamp(nxt.timestamp(), tz).isoformat())
        prev, now = nxt, nxt


def test_a_job_at_0230_runs_once_on_the_day_the_clock_springs_forward_and_once_when_it_falls_back():
    c = Crontab("30 2 * * *")
    spring = fires(c, local(2026, 3, 28, 12), local(2026, 3, 30, 12), BERLIN)
    assert spring == ["2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"]  # 02:30 does not exist that day
    fall = fires(c, local(2026, 10, 24, 12), local(2026, 10, 26, 12), BERLIN)
    assert fall == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]  # not again at the second 02:30


def test_every_quarter_hour_through_both_transitions_never_repeats_or_runs_backwards():
    c = Crontab("*/15 * * * *")
    # spring: a 23-hour day, the skipped 02:xx slots fall on 03:xx ones; fall: 25 hours, 02:xx once
    for start, count in ((local(2026, 3, 29, 0), 92), (local(2026, 10, 25, 0), 96)):
        instants = [datetime.fromisoformat(t).timestamp() for t in fires(c, start - 1, start + 30 * 3600, BERLIN)]
        day = [t for t in instants if datetime.fromtimestamp(t, BERLIN).date() == datetime.fromtimestamp(start, BERLIN).date()]
        assert instants == sorted(set(instants)) and len(day) == count


def test_cron_meaning_not_apschedulers():
    # weekday 1 is Monday and 0/7 Sunday (APScheduler's own fields count 0 as Monday)
    monday = Crontab("0 4 * * 1").next_after(local(2026, 12, 1, 12), BERLIN)   # 2026-12-01 is a Tuesday
    assert datetime.fromtimestamp(monday, BERLIN).isoformat() == "2026-12-07T04:00:00+01:00"
    assert Crontab("0 4 * * 7").next_after(local(2026, 12, 1), BERLIN) == \
        Crontab("0 4 * * 0").next_after(local(2026, 12, 1), BERLIN)
    # both day fields restricted: either matches (the 15th, or any Friday)
    c = Crontab("0 0 15 * 5")
    t, got = local(2026, 12, 1), []
    for _ in range(4):
        t = c.next_after(t, BERLIN)
        got.append(datetime.fromtimestamp(t, BERLIN).day)
    assert got == [4, 11, 15, 18]


@pytest.mark.parametrize("text", ["", "0 4 * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
                                  "* * * * 8", "5-1 * * * *", "*/0 * * * *", "a * * * *", "0 4 * * 1 extra",
                                  "٣ * * * *"])
def test_a_bad_schedule_is_refused_at_load_naming_the_key(text):
    from ishowd.config import ConfigError
    assert crontab_problem(text)
    with pytest.raises(ConfigError, match=r"\[jobs\.\w[\w-]*\] schedule"):
        catalog.loads_config(f'[jobs.{next(iter(catalog.jobs()))}]\nschedule = "{text}"\n', "bad.toml")


def test_a_step_back_never_fires_a_slot_twice_and_a_step_forward_runs_the_missed_one_once():
    c = Crontab("0 4 * * *")
    trigger = CrontabTrigger(c, BERLIN)
    ran = local(2026, 12, 2, 4)
    trigger.fired(ran)
    # the clock steps back to 03:00, before the slot that already ran: the next is tomorrow's
    back = datetime.fromtimestamp(local(2026, 12, 2, 3), timezone.utc)
    assert trigger.get_next_fire_time(None, back).timestamp() == local(2026, 12, 3, 4)
    # the clock steps forward ten days: APScheduler runs the stored slot once (coalesced), then asks
    # for the next from then; the answer is after the new now, not each of the ten days in between
    later = datetime.fromtimestamp(local(2026, 12, 13, 9), timezone.utc)
    stored = datetime.fromtimestamp(local(2026, 12, 3, 4), timezone.utc)
    assert trigger.get_next_fire_time(stored, later).timestamp() == local(2026, 12, 14, 4)


# --- the runner ----------------------------------------------------------------------


class Sleepy(Job):
    """A job for these tests: its behaviour comes from the test."""
    period = DAY

    def __init__(self, config, name, body, touches=()):
        super().__init__(config)
        self.name, self.body, self.touches = name, body, frozenset(touches)

    def run(self, ctx):
        return self.body(ctx)


def make_runner(tmp_path, bodies: dict, *, touches=None, timeout=30.0, clock=time.time):
    cfg = catalog.loads_config(f'[storage]\npath = "{tmp_path / "ishowd.db"}"\n', "test.toml")
    for name in bodies:
        cfg.sections["jobs." + name] = Section(schedule="0 4 * * *", enabled=True, timeout=timeout)
    store = Store(tmp_path / "ishowd.db")
    jobs = {n: Sleepy(cfg, n, b, (touches or {}).get(n, ())) for n, b in bodies.items()}
    return JobRunner(cfg, store, jobs, clock=clock), store


def rows(tmp_path):
    with sqlite3.connect(tmp_path / "ishowd.db") as conn:
        return conn.execute("SELECT job, status, detail, trigger FROM job_runs ORDER BY id").fetchall()


def test_runs_are_recorded_and_a_broken_job_is_a_failed_run(tmp_path):
    def broken(ctx):
        raise RuntimeError("disk on fire")
    runner, store = make_runner(tmp_path, {"fine": lambda ctx: Outcome("ok", "all good", {"n": 3}),
                                           "broken": broken})
    try:
        assert runner.run("fine").status == "ok"
        r = runner.run("broken", trigger="schedule")
        assert (r.status, r.detail) == ("failed", "broke: RuntimeError: disk on fire")
    finally:
        store.close()
    assert rows(tmp_path) == [("fine", "ok", "all good", "operator"),
                              ("broken", "failed", "broke: RuntimeError: disk on fire", "schedule")]


def test_a_run_past_its_timeout_is_ended_with_its_whole_process_group(tmp_path):
    pids = tmp_path / "pids"

    def hangs(ctx):
        result = ctx.run(["/bin/sh", "-c", f"sleep 300 & echo $$ $! > {pids}; wait"])
        ctx.check()
        return Outcome("ok", f"the child said {result.status}")
    runner, store = make_runner(tmp_path, {"hangs": hangs}, timeout=1.0)
    try:
        r = runner.run("hangs")
    finally:
        store.close()
    assert r.status == "timeout" and "timeout of 1s" in r.detail
    for pid in map(int, pids.read_text().split()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_jobs_touching_the_same_thing_never_run_at_once_and_a_busy_slot_is_skipped(tmp_path):
    inside, overlap, release = [], [], threading.Event()
    lock = threading.Lock()

    def body(tag):
        def run(ctx):
            with lock:
                if inside:
                    overlap.append((tag, list(inside)))
                inside.append(tag)
            release.wait(10)
            with lock:
                inside.remove(tag)
            return Outcome("ok", tag)
        return run
    runner, store = make_runner(tmp_path, {"rotate": body("rotate"), "tail": body("tail"), "other": body("other")},
                                touches={"rotate": {"backend-log"}, "tail": {"backend-log"}})
    try:
        threads = [threading.Thread(target=runner.run, args=(n,)) for n in ("rotate", "tail", "other")]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(inside) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runner.run("rotate", trigger="schedule") is None  # its slot, while it runs: skipped
        release.set()
        for t in threads:
            t.join(10)
    finally:
        store.close()
    assert sorted(inside) == [] and not [o for o in overlap if {"rotate", "tail"} <= {o[0], *o[1]}]
    assert sorted(r[0] for r in rows(tmp_path)) == ["other", "rotate", "tail"]


def test_a_run_cut_short_by_a_crash_is_recorded_and_a_missed_slot_runs_once_at_start(tmp_path):
    now = [local(2026, 12, 1, 12)]
    runner, store = make_runner(tmp_path, {"daily": lambda ctx: Outcome("ok", "done")}, clock=lambda: now[0])
    runner.run("daily", trigger="schedule", slot=local(2026, 12, 1, 4))
    with store.transaction() as conn:   # a run in flight when the daemon died
        conn.execute("INSERT INTO job_runs (job, started, status, trigger) VALUES ('daily', 1, 'running', 'schedule')")
    store.close()
    now[0] = local(2026, 12, 5, 9)       # down for four days: four slots passed
    runner, store = make_runner(tmp_path, {"daily": lambda ctx: Outcome("ok", "done")}, clock=lambda: now[0])
    try:
        assert rows(tmp_path)[-1][1:3] == ("failed", "interrupted: ishowd stopped while it ran (crash, kill or "
                                                     "power loss)")
        missed = runner.missed()
    finally:
        store.close()
    assert missed == [("daily", Crontab("0 4 * * *").last_at_or_before(now[0], None))]   # once, not four times
