"""The daemon's main loop (``ishowd/mainloop.py``): one grid on the monotonic clock, coincident
runs in one wake-up, missed slots skipped, wall clock steps seen and harmless, signals at once.

Each test runs the loop in the main thread (it takes the signals' wake-up fd) and stops it from
one of its own runs."""
from __future__ import annotations

import os
import signal
import time

from ishowd.mainloop import MainLoop


def loop(**kw) -> MainLoop:
    return MainLoop([signal.SIGHUP], kw.pop("on_signal", lambda signums: None), **kw)


def test_runs_due_together_share_one_wake_up_in_their_order():
    """A 0.1 s task and a 0.2 s tick whose run takes 30 ms: each tick's wake-up is also a task's,
    the task first, and the loop wakes once per task slot, not once more for each tick."""
    ml = loop()
    runs: list[tuple[int, str]] = []

    def tick():
        runs.append((ml.wakes, "tick"))
        time.sleep(0.03)               # a slow tick: its length must not move the next wake-up
        if sum(1 for _, n in runs if n == "tick") == 6:
            ml.stop()

    ml.every("sample", 0.2, tick, order=1)
    ml.every("log-ingest", 0.1, lambda: runs.append((ml.wakes, "task")), order=0)
    ml.run()
    ticks = [w for w, n in runs if n == "tick"]
    tasks = [w for w, n in runs if n == "task"]
    assert len(ticks) == 6
    assert set(ticks) <= set(tasks), "a tick woke the loop without the task due with it"
    for w in ticks:
        assert runs.index((w, "task")) < runs.index((w, "tick"))
    assert ml.wakes == len(tasks), f"{ml.wakes} wake-ups for {len(tasks)} task slots"


def test_missed_slots_are_skipped_not_replayed():
    """A run that outlasts its period takes the slots it covered with it: no burst of runs after."""
    ml = loop()
    began: list[float] = []

    def run():
        began.append(time.monotonic())
        if len(began) == 2:
            time.sleep(0.35)           # seven slots of 0.05 s
        if len(began) == 6:
            ml.stop()

    ml.every("sample", 0.05, run)
    ml.run()
    gaps = [b - a for a, b in zip(began, began[1:])]
    assert gaps[1] >= 0.35
    assert min(gaps[2:]) > 0.025, f"runs back to back after the long one: {gaps}"


def test_a_wall_clock_step_is_reported_and_moves_nothing():
    """30 days forward, then 31 back: the loop runs on at its period (a naive one floods after the
    first step and hangs after the second) and reports each step once."""
    offset = [0.0]
    steps: list[float] = []
    ml = loop(wall=lambda: time.time() + offset[0], on_step=steps.append)
    began: list[float] = []

    def run():
        began.append(time.monotonic())
        if len(began) == 5:
            offset[0] += 30 * 86400
        elif len(began) == 10:
            offset[0] -= 31 * 86400
        elif len(began) == 15:
            ml.stop()

    start = time.monotonic()
    ml.every("sample", 0.1, run)
    ml.run()
    elapsed = time.monotonic() - start
    assert [round(s / 86400) for s in steps] == [30, -31]
    assert len(began) <= elapsed / 0.1 + 2
    assert min(b - a for a, b in zip(began, began[1:])) > 0.05


def test_a_signal_wakes_the_loop_at_once_though_its_next_run_is_an_hour_off():
    got: list[list[int]] = []

    def on_signal(signums):
        got.append(signums)
        ml.stop()

    ml = loop(on_signal=on_signal)
    runs = []
    ml.every("sample", 3600, lambda: (runs.append(1), os.kill(os.getpid(), signal.SIGHUP)))
    start = time.monotonic()
    ml.run()
    assert got == [[signal.SIGHUP]] and runs == [1]
    assert time.monotonic() - start < 30
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL   # put back as it was


def test_added_again_with_the_same_period_an_entry_keeps_its_place():
    """A reload schedules every entry again: the slot just run must not come round again."""
    ml = loop()
    runs: list[int] = []

    def run():
        runs.append(ml.wakes)
        ml.every("sample", 0.5, run)          # as a reload does, right after the run
        if len(runs) == 3:
            ml.stop()

    ml.every("sample", 0.5, run)
    start = time.monotonic()
    ml.run()
    assert runs == [1, 2, 3]
    assert time.monotonic() - start >= 0.9
