"""What judging a full alert window costs per tick, against summing the window whole (the yardstick).

    python bench/alert_windows.py [--steps 300]

For windows as the default rules hold them after a day (a counter written every
5 s over the compile-fallback rule's 1 d; the backend's RSS every tick over
24 h, at 10 s and at 1 s), each step adds the tick's sample, slides the window
and asks ``increase`` and ``mean`` of ``ishowd.alerts.engine.Window``. The
yardstick, in the same run, is the same window's values summed whole each step
(a counter's rises and ``math.fsum``), which is what a window without kept sums
has to do. Each prints the median step, hot (``time.perf_counter``): the ratio is what
carries over.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ishowd.alerts.engine import Window  # noqa: E402

CASES = (("counter, 1 d at 5 s", 86400, 5, True), ("gauge, 24 h at 10 s", 86400, 10, False),
         ("gauge, 24 h at 1 s", 86400, 1, False))


def summed_whole(w: Window, now: float, counter: bool) -> tuple:
    seq = w.values()
    base = w.base(now)
    if base is not None:
        seq = [base, *seq]
    total = 0.0
    if counter:
        for a, b in zip(seq, seq[1:]):
            total += (b - a) if b >= a else b
    return total, math.fsum(seq)


def full_window(length: float, step: float, value) -> tuple[Window, int]:
    w = Window(length)
    n = int(length // step)
    for i in range(n):
        w.add(i * step, value(i))
    return w, n


def median_step(w: Window, n: int, step: float, value, counter: bool, steps: int, judge) -> float:
    took = []
    for k in range(n, n + steps):
        now = k * step
        t0 = time.perf_counter()
        w.add(now, value(k))
        w.advance(now)
        judge(w, now, counter)
        took.append(time.perf_counter() - t0)
    return sorted(took)[len(took) // 2]


def kept_sums(w: Window, now: float, counter: bool) -> None:
    w.aggregate("increase", now, counter)
    w.aggregate("mean", now, counter)


def run(length: float, step: float, counter: bool, steps: int) -> tuple[float, float, int]:
    """Median seconds a step, kept sums then summed whole, each over its own copy of the window
    (interleaved, the whole sum's pass over memory would leave the other cold)."""
    value = (lambda i: float(i // 100)) if counter else (lambda i: 1.5e9 + (i % 977) * 4096.0)
    w, n = full_window(length, step, value)
    kept = median_step(w, n, step, value, counter, steps, kept_sums)
    w, n = full_window(length, step, value)
    whole = median_step(w, n, step, value, counter, steps, summed_whole)
    return kept, whole, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    print(f"{'window':<22} {'samples':>8} {'kept sums µs/tick':>18} {'summed whole µs/tick':>21} {'ratio':>7}")
    for name, length, step, counter in CASES:
        kept, whole, n = run(length, step, counter, args.steps)
        print(f"{name:<22} {n:8d} {kept * 1e6:18.1f} {whole * 1e6:21.1f} {whole / kept:6.0f}x")


if __name__ == "__main__":
    main()
