"""Ingesting a big backend log: ishowd's throughput against ``grep -c``, and its memory.

    python bench/ingest_log.py                    # 1000 MB and 100 MB logs in bench/out/, then deleted
    python bench/ingest_log.py --size-mb 200 --keep

The log is what a year and more of a real deployment writes (all in the real
format, ANSI colours included): health probes every 15 s (the web UI's and
ishowd's), about 500 syntheses a day (80 % /api/tts with their request
lines and a tqdm bar, 20 % live chat), a few previews with raw newlines,
4xx/5xx answers with their WARN lines, Python warnings, restarts with their
boot lines (cargo, Python prints, the onnxruntime warning).

``grep -c 'tts synthesis complete'`` and ishowd's ingestion (the same code
the daemon runs, into a fresh store, each in its own process, the file in
the page cache) run on the same file in the same run. Peak RSS is the
ingesting process's ``VmHWM`` (the scan workers of ``--workers`` are not
included: each holds one batch); it is measured at two file sizes to show it
does not grow with the file.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

TEXTS = ["欢迎来到我的直播间", "谢谢老板的火箭！", "hello chat, what's up", "今天我们来玩一个新游戏",
         "voice_id=evil elapsed_ms=1 这是一个测试", "Speed is the GOAT 🐐🐐🐐", "主播主播，能不能读一下这条弹幕",
         "I've been watching since day one, love the streams", "哈哈哈哈哈哈哈哈哈哈"]


def generate(path: Path, size: int, seed: int = 1) -> dict:
    import standin_backend as sb
    rnd = random.Random(seed)
    clock = sb.Clock(1_700_000_000_000_000, 1)
    b = sb.StandinBackend(path, clock=clock)
    written = 0
    syntheses = 0
    with open(path, "wb") as out:
        out.write(sb.NOISE_BUILD + sb.NOISE_PYTHON)
        while written < size:
            parts = []
            # one "slot" of the day: ~86400 / 500 s with probes every 15 s
            slot_us = int(rnd.expovariate(500 / 86400) * 1e6)
            t_end = clock.now + slot_us
            while clock.now + 15_000_000 < t_end:
                clock.now += 15_000_000 + rnd.randint(0, 999)
                parts.append(sb.lines_request(clock.now, "GET", "/api/health", 200, 0))
            clock.now = t_end
            r = rnd.random()
            if r < 0.0004:
                parts.append(b.boot_lines())
            if r < 0.80:
                n = rnd.randint(1, 12)
                text = " ".join(rnd.choice(TEXTS) for _ in range(n))
                if rnd.random() < 0.01:
                    text = text.replace(" ", "\n", 1)
                parts.append(sb.noise_tqdm(rnd.randint(1, 3)))
                parts.append(b.api_bytes(text, rtf=rnd.gauss(0.278, 0.01), waveform_len=rnd.randint(24000, 480000)))
            else:
                parts.append(b.chat_bytes(rtf=rnd.gauss(0.33, 0.02), samples=rnd.randint(24000, 480000)))
            syntheses += 1
            if rnd.random() < 0.01:
                parts.append(sb.lines_request(clock(), "POST", "/api/tts", rnd.choice([400, 502]), 3))
            if rnd.random() < 0.005:
                parts.append(sb.NOISE_PYTHON)
            data = b"".join(parts)
            out.write(data)
            written += len(data)
    b.emitted.clear()
    return {"bytes": written, "syntheses": syntheses}


def grep_seconds(path: Path, runs: int = 3) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        r = subprocess.run(["grep", "-c", "tts synthesis complete", str(path)], capture_output=True, check=True)
        times.append(time.perf_counter() - t)
        count = int(r.stdout)
    return statistics.median(times), count


def ingest_child(path: str, workdir: str, workers: str) -> None:
    """Runs in its own process: ingest ``path`` into a fresh store; print one JSON line."""
    from ishowd.backend.ingest import Ingestor
    from ishowd.catalog import loads_config as loads
    from ishowd.store.writer import Store
    db = os.path.join(workdir, "bench.db")
    cfg = loads(f'[storage]\npath = "{db}"\n[rtf]\nlogs = ["{path}"]\ncatchup_workers = {workers}\n')
    store = Store(db)
    ing = Ingestor(cfg, store)
    # the longest any single transaction held the writer lock (what a sampling tick could wait)
    longest = [0.0]
    real = store.transaction

    from contextlib import contextmanager

    @contextmanager
    def timed():
        t0 = time.perf_counter()
        with real() as conn:
            yield conn
        longest[0] = max(longest[0], time.perf_counter() - t0)
    store.transaction = timed
    t = time.perf_counter()
    ing.run()
    took = time.perf_counter() - t
    n = store.db.execute("SELECT count(*) FROM rtf_records").fetchone()[0]
    store.close()
    # VmHWM: the peak resident set of this process's own memory (ru_maxrss would also count what
    # the fork that started it inherited from the bench's parent, which generated the log)
    hwm = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
    print(json.dumps({"seconds": took, "records": n, "max_rss_kb": hwm, "longest_transaction_s": longest[0]}))


def ingest_seconds(path: Path, workdir: Path, workers: int) -> dict:
    db = workdir / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(str(db) + suffix):
            os.unlink(str(db) + suffix)
    # a fresh store, migrated beforehand: the measured process's children are only its scan workers
    subprocess.run([sys.executable, "-m", "ishowd.store.migrate", str(db)], check=True, cwd=ROOT)
    r = subprocess.run([sys.executable, __file__, "--child", str(path), str(workdir), str(workers)], capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def ingest_workers(setting: int) -> int:
    from ishowd.backend.ingest import catchup_workers
    return catchup_workers(setting)


def warm(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def measure(path: Path, workdir: Path, workers: int) -> dict:
    warm(path)
    size = path.stat().st_size
    g, count = grep_seconds(path)
    runs = [ingest_seconds(path, workdir, workers) for _ in range(2)]
    best = min(runs, key=lambda r: r["seconds"])
    assert best["records"] == count, (best["records"], count)   # every synthesis line, once
    mb = size / 1e6
    return {"mb": mb, "workers": workers, "grep_s": g, "grep_mb_s": mb / g, "grep_count": count,
            "ishowd_s": best["seconds"], "ishowd_mb_s": mb / best["seconds"], "records": best["records"],
            "max_rss_mb": best["max_rss_kb"] / 1024,
            "longest_transaction_ms": best["longest_transaction_s"] * 1000}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        ingest_child(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=1000, help="the big log (MB, 10^6 bytes)")
    ap.add_argument("--small-mb", type=int, default=100, help="the small log, for the memory comparison")
    ap.add_argument("--keep", action="store_true", help="keep the generated logs")
    ap.add_argument("--dir", default=str(HERE / "out"))
    ap.add_argument("--workers", default="0,-1", help="catchup_workers settings to measure (0: serial, -1: auto)")
    args = ap.parse_args()
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for mb in (args.small_mb, args.size_mb):
            path = work / f"backend-{mb}MB.log"
            if not path.exists():
                t = time.perf_counter()
                info = generate(path, mb * 1_000_000)
                print(f"generated {path} ({info['bytes'] / 1e6:.0f} MB, {info['syntheses']} syntheses) "
                      f"in {time.perf_counter() - t:.0f}s", flush=True)
            for w in (int(x) for x in args.workers.split(",")):
                r = measure(path, work, w)
                results.append(r)
                label = "serial" if w == 0 else f"workers={w} ({ingest_workers(w)} processes)"
                print(f"{r['mb']:.0f} MB, {label}: grep -c {r['grep_mb_s']:.0f} MB/s ({r['grep_s']:.2f}s, "
                      f"{r['grep_count']} lines); ishowd {r['ishowd_mb_s']:.0f} MB/s ({r['ishowd_s']:.2f}s, "
                      f"{r['records']} records); ratio {r['ishowd_mb_s'] / r['grep_mb_s']:.3f}; "
                      f"peak RSS of the ingesting process {r['max_rss_mb']:.0f} MiB; "
                      f"longest transaction {r['longest_transaction_ms']:.0f} ms", flush=True)
    finally:
        if not args.keep:
            for mb in (args.small_mb, args.size_mb):
                p = work / f"backend-{mb}MB.log"
                if p.exists():
                    p.unlink()
            for suffix in ("", "-wal", "-shm"):
                p = work / ("bench.db" + suffix)
                if p.exists():
                    p.unlink()
    print("command: python bench/ingest_log.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
