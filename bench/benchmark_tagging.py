"""What telling the benchmark's own requests apart costs the log scanner: scan speed with and without it.

    python bench/benchmark_tagging.py [--mb 256] [--rounds 5] [--share 0.01]

Builds a realistic backend log in memory (API requests with varied Chinese
texts, live chat, health probes, noise; one request in a hundred is the
benchmark's by default: ``--share``), then scans it in 4 MiB batches with ``scan_buffer``, once with
``bench=None`` (the yardstick) and once with the default benchmark text, in
alternation (ABBA); prints MB/s of each, the ratio, and checks both found the same
records apart from their source.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from ishowd import catalog  # noqa: E402
from ishowd.backend import logformat as lf  # noqa: E402
from standin_backend import Clock, StandinBackend, lines_request, noise_tqdm  # noqa: E402

WORDS = "欢迎来到我的直播间今天我们一起聊天唱歌打游戏谢谢大家的礼物主播好厉害再来一首"


def build(mb: int, text: str, share: float) -> bytes:
    rnd = random.Random(1)
    b = StandinBackend("/nonexistent", clock=Clock(1_759_000_000_000_000, 500_000))
    parts, size = [], 0
    while size < mb << 20:
        r = rnd.random()
        if r < share:
            chunk = b.api_bytes(text)
        elif r < 0.55:
            chunk = noise_tqdm() + b.api_bytes("".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 60))))
        elif r < 0.75:
            chunk = b.chat_bytes()
        else:
            chunk = lines_request(b.clock(), "GET", "/api/health", 200, 0)
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def scan_all(data: bytes, bench, batch: int = 4 << 20) -> tuple[float, list]:
    buf = bytearray(batch + 1)
    buf[0] = 0x0A
    view = memoryview(buf)
    pos, sources = 0, []
    t0 = time.perf_counter()
    while pos < len(data):
        n = min(batch, len(data) - pos)
        view[1:1 + n] = data[pos:pos + n]
        res = lf.scan_buffer(buf, 1, 1 + n, final=pos + n >= len(data), bench=bench)
        sources += [e.source for e in res.events if isinstance(e, lf.Synthesis)]
        pos += res.consumed
    return time.perf_counter() - t0, sources


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--share", type=float, default=0.01, help="the benchmark's share of the records")
    args = ap.parse_args()
    text = catalog.loads_config("", "<default>").sections["jobs.benchmark"]["text"]
    data = build(args.mb, text, args.share)
    bench = lf.benchmark_texts([text])
    best = {"without": 1e9, "with": 1e9}
    found = {}
    pair = (("without", None), ("with", bench))
    for i in range(args.rounds):
        for name, b in pair if i % 2 == 0 else pair[::-1]:     # ABBA: neither side always goes first
            took, sources = scan_all(data, b)
            best[name] = min(best[name], took)
            found[name] = sources
    mb = len(data) / 1e6
    assert len(found["with"]) == len(found["without"])
    n_bench = found["with"].count("benchmark")
    print(f"log: {mb:.0f} MB, {len(found['with'])} synthesis records, {n_bench} of them the benchmark's")
    for name in best:
        print(f"scan {name:>7} tagging: best {best[name]:.3f} s, {mb / best[name]:.0f} MB/s")
    print(f"ratio with/without: {best['with'] / best['without']:.3f}")


if __name__ == "__main__":
    main()
