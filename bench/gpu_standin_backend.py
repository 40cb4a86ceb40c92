"""The stand-in backend with real GPU work: each synthesis keeps a CUDA GPU busy with torch for its time.

    python3 bench/gpu_standin_backend.py LOG [--rtf 0.25] [--seconds-per-char 0.2] [--hold-gb 4]

For a machine with a real NVIDIA GPU and torch (docs/hardware.md): the
benchmark job is run against it while ishowd samples the GPU through NVML,
so the stored ``gpu_utilization_percent`` must rise during the runs. The HTTP
API and the log are the stand-in's (tests/standin_backend.py); only the work
differs: bf16 matrix products on the GPU until the synthesis's time is spent,
and ``--hold-gb`` of GPU memory held like model weights. Prints the URL, then
serves until SIGTERM or SIGINT. torch is imported here, in this process only: never by
ishowd.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from standin_backend import StandinBackend  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log")
    ap.add_argument("--rtf", type=float, default=0.25)
    ap.add_argument("--seconds-per-char", type=float, default=0.2, help="audio seconds per character (F5: ~0.2)")
    ap.add_argument("--hold-gb", type=float, default=4.0, help="GPU memory held, as the model's weights are")
    args = ap.parse_args()

    import torch
    dev = torch.device("cuda")
    weights = torch.empty(int(args.hold_gb * 1e9), dtype=torch.uint8, device=dev)  # noqa: F841 (held)
    a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)

    def work(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for _ in range(8):
                torch.matmul(a, b)
            torch.cuda.synchronize()

    backend = StandinBackend(args.log, rtf=args.rtf, seconds_per_char=args.seconds_per_char)
    backend.synth_work = work
    backend.start()
    print(backend.url, flush=True)
    # a background job of a script ignores SIGINT: the script ends it with SIGTERM
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        backend.stop()


if __name__ == "__main__":
    main()
