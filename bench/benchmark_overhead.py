"""What the benchmark's own client adds to each request it times: its wall time less the synthesis's.

    python bench/benchmark_overhead.py [--runs 20] [--seconds-per-char 0.04]

Runs the benchmark job's code (``ishowd/benchmark.py``) against the tests'
stand-in backend on 127.0.0.1 (real HTTP, a real store; each synthesis takes
``rtf x audio`` as the stand-in measures it) and prints, per timed request,
the client's wall time minus the synthesis time the stand-in measured: the
HTTP round trip, the JSON, base64 and WAV checks. The yardstick is the
synthesis itself, in the same run.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import test_benchmark as tb  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--seconds-per-char", type=float, default=0.04)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rig = tb.Rig(Path(d), seconds_per_char=args.seconds_per_char)
        try:
            rig.backend.rtfs = [0.25] * (args.runs + 1)
            out = rig.run(f"runs = {args.runs}")
        finally:
            rig.close()
    synth = rig.backend.syntheses[1:]                     # the warm-up is not timed
    extra = [p["wall"] - s.seconds for p, s in zip(out.result["per_run"], synth)]
    print(out.status, out.detail)
    print(f"synthesis: {statistics.median(s.seconds for s in synth) * 1e3:.0f} ms each "
          f"({synth[0].audio_seconds:.2f} s of audio at RTF 0.25)")
    print(f"client overhead per request: median {statistics.median(extra) * 1e3:.1f} ms, "
          f"max {max(extra) * 1e3:.1f} ms over {len(extra)} requests")


if __name__ == "__main__":
    main()
