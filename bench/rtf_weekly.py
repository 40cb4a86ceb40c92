"""``ishowctl rtf weekly --weeks 52`` over a year of records: wall time of the installed command.

    python bench/rtf_weekly.py            # builds bench/out/rtf-year.db once, then times the command

A year of about 500 requests a day (80 % /api/tts, 20 % live chat, a
compile outlier after each of ~50 restarts, two planted regressed weeks)
with a year of GPU lock and temperature readings, so the report also looks
up likely causes. The timed command is the one an operator runs, started
as a fresh process each time (Python start-up, imports, the config, the
store, the report); the figure is the median of the runs.
"""
from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def build(db: Path, now: float, per_day: int = 500, seed: int = 2) -> int:
    from ishowd.store.writer import Store
    rnd = random.Random(seed)
    store = Store(str(db))
    start = now - 365 * 86400
    rows = []
    from ishowd.backend.report import week_start
    bad_weeks = {week_start(now - 20 * 86400), week_start(now - 200 * 86400)}
    t = start
    while t < now:
        t += rnd.expovariate(per_day / 86400)
        slow = week_start(t) in bad_weeks
        first = rnd.random() < 50 / (365 * per_day)
        source = "api" if rnd.random() < 0.8 else "chat"
        rtf = rnd.gauss(0.42 if slow else 0.278, 0.012) if not first else rnd.uniform(4, 9)
        audio = rnd.uniform(1, 20)
        rows.append((int(t * 1e6), source, rnd.choice(["walter", "demo"]), int(rtf * audio * 1000), audio, rtf,
                     "f5", int(first), "/ssd/ishowtts/logs/backend.log"))
    with store.transaction() as conn:
        conn.executemany("INSERT OR IGNORE INTO rtf_records (ts, source, voice, elapsed_ms, audio_seconds, rtf, "
                         "engine, first_after_start, log) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    ts = list(range(int(start), int(now) - 7200, 600))
    store.bulk_load("gpu_frequency_locked", {"gpu": "gpu"}, ts,
                    [0.0 if week_start(x) in bad_weeks else 1.0 for x in ts])
    store.bulk_load("gpu_temperature_celsius", {"gpu": "gpu"}, ts, [rnd.gauss(62, 3) for _ in ts])
    store.close()
    return len(rows)


def main() -> None:
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    db = out / "rtf-year.db"
    cfg = out / "rtf-year.toml"
    now = time.time()
    if not db.exists():
        t = time.perf_counter()
        n = build(db, now)
        print(f"built {db}: {n} records over 365 days in {time.perf_counter() - t:.0f}s", flush=True)
    cfg.write_text(f'[storage]\npath = "{db}"\n[exporter]\nlisten = ""\n')
    ishowctl = str(Path(sys.executable).parent / "ishowctl")
    argv = [ishowctl, "--config", str(cfg), "rtf", "weekly", "--weeks", "52"]
    times = []
    for i in range(7):
        t = time.perf_counter()
        r = subprocess.run(argv, capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                                                       if k != "ISHOWD_CONFIG"})
        times.append(time.perf_counter() - t)
        assert r.returncode == 0, r.stderr
    regressed = r.stdout.count("REGRESSED")
    t = time.perf_counter()
    for _ in range(5):
        subprocess.run([sys.executable, "-c", "pass"], capture_output=True)
    bare = (time.perf_counter() - t) / 5
    print(f"ishowctl rtf weekly --weeks 52: median {statistics.median(times) * 1000:.0f} ms wall over 7 runs "
          f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); a bare `python -c pass` takes "
          f"{bare * 1000:.0f} ms; {regressed} weeks reported as regressed")
    print("command: python bench/rtf_weekly.py")


if __name__ == "__main__":
    main()
