"""The rotation of a large backend log while a writer appends, against `cp` of the same file.

    python bench/rotate_log.py [--mb 1024] [--dir DIR]

Makes a log of --mb megabytes of real backend records in DIR (default: a
temporary directory on the same disk as this checkout), then, with a writer
appending about 2,000 records a second through O_APPEND:

- times `cp` of the log to a file beside it (the yardstick, in the same run), and
  `cp` then `sync FILE` (the archive must be on disk before the cut, so that
  is the like-for-like yardstick; cp alone leaves its copy in the page cache);
- times the rotate-logs job on it (the tailer's catch-up left out: the log
  is not in [rtf] logs here, so this is the rotation's own cost);
- reports the ratio, the bytes the job wrote (/proc/PID/io of a child
  process that runs it), its peak resident memory against the same child's
  before the rotation (it streams: flat), and that every line survived once.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

# Runs in a child so its /proc/self/io and peak RSS are the rotation's alone.
JOB = textwrap.dedent("""
    import json, os, resource, sys, time
    from ishowd import catalog
    from ishowd.jobs.rotate_logs import RotateLogs
    from ishowd.jobs.runner import JobRunner
    from ishowd.store.writer import Store
    root, db = sys.argv[1], sys.argv[2]
    cfg = catalog.loads_config(f'[deployment]\\nroot = "{root}"\\n[jobs.rotate-logs]\\nfiles = ["logs/backend.log"]\\n'
                               '[rtf]\\nlogs = []\\n', "bench")
    store = Store(db)
    runner = JobRunner(cfg, store, {"rotate-logs": RotateLogs(cfg)})
    def io():
        return {k: int(v) for k, v in (l.split(": ") for l in open("/proc/self/io").read().splitlines())}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before, t0 = io(), time.perf_counter()
    r = runner.run("rotate-logs")
    took = time.perf_counter() - t0
    after = io()
    store.close()
    print(json.dumps({"status": r.status, "detail": r.detail, "seconds": took,
                      "wchar": after["wchar"] - before["wchar"], "write_bytes": after["write_bytes"] - before["write_bytes"],
                      "rss_before_kib": rss_before, "rss_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "result": r.result}))
""")

WRITER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {tests!r})
    from standin_backend import line_api
    path, stop, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    start = time.monotonic()
    while not os.path.exists(stop):
        for _ in range(20):
            os.write(fd, line_api(1_790_000_000_000_000 + n * 1000, f"line {{n}} appended"))
            n += 1
        time.sleep(0.01)   # about 2,000 records a second
    print(n)
""").format(tests=str(HERE.parent / "tests"))


def make_log(path: Path, mb: int) -> int:
    from standin_backend import line_api
    n, target = 0, mb << 20
    with open(path, "wb") as f:
        block = []
        while f.tell() < target:
            block.append(line_api(1_790_000_000_000_000 + n * 1000, f"line {n} 这是一个典型的句子"))
            n += 1
            if len(block) == 2000:
                f.write(b"".join(block))
                block = []
        f.write(b"".join(block))
    return n


def drop_caches_hint(path: Path) -> None:
    with open(path, "rb") as f:  # read once so cp and the rotation both start from a warm cache
        while f.read(8 << 20):
            pass


def main() -> None:
    import json
    import statistics
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=str(HERE / "out"))
    args = ap.parse_args()
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=args.dir, prefix="rotate-"))
    try:
        base = work / "base.log"
        n = make_log(base, args.mb)
        size = base.stat().st_size
        drop_caches_hint(base)
        print(f"log: {size / 1e6:.0f} MB, {n} records; {args.rounds} rounds, each: cp of it (the yardstick, "
              "whose copy is then rotated) and the rotation, a writer appending meanwhile")
        ratios, synced = [], []
        for round_ in range(args.rounds):
            root = work / f"ishowtts-{round_}"
            (root / "logs").mkdir(parents=True)
            log = root / "logs" / "backend.log"
            t0 = time.perf_counter()
            subprocess.run(["cp", str(base), str(log)], check=True)
            cp_s = time.perf_counter() - t0
            subprocess.run(["sync", str(log)], check=True)   # cp's copy on disk, as the archive must be
            cp_sync_s = time.perf_counter() - t0
            stop = work / f"stop-{round_}"
            writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log), str(stop), str(n)],
                                      stdout=subprocess.PIPE, text=True)
            time.sleep(0.5)
            job = subprocess.run([sys.executable, "-c", JOB, str(root), str(work / f"ishowd-{round_}.db")],
                                 capture_output=True, text=True, check=True)
            stop.write_text("")
            total = int(writer.communicate(timeout=60)[0])
            out = json.loads(job.stdout)
            archive = next((root / "logs" / "archive").glob("*/backend_*.log"))
            seen = 0
            for path in (archive, log):
                with open(path, "rb") as f:
                    seen += sum(1 for line in f if line.strip(b" \n"))
            ratios.append(out["seconds"] / cp_s)
            synced.append(out["seconds"] / cp_sync_s)
            print(f"round {round_ + 1}: cp {cp_s:.2f} s (then synced {cp_sync_s:.2f} s), rotation "
                  f"{out['seconds']:.2f} s ({ratios[-1]:.2f}x cp, {synced[-1]:.2f}x cp+sync), "
                  f"{out['wchar'] / 1e6:.0f} MB written ({out['write_bytes'] / 1e6:.0f} MB to disk), "
                  f"peak RSS {out['rss_peak_kib'] / 1024:.1f} MiB (before {out['rss_before_kib'] / 1024:.1f}), "
                  f"lines {seen}/{total} {'each once' if seen == total else 'MISMATCH'}; {out['detail']}")
            shutil.rmtree(root)
        print(f"median: rotation {statistics.median(ratios):.2f}x cp, {statistics.median(synced):.2f}x cp+sync")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
