"""The reference workload: 40 series at a 10 s interval, shaped like a Jetson's readings.

Shared by the store benchmarks so every figure is about the same data: values
are quantised the way the real sources quantise them (millidegrees, per-mille
load, mV x mA, bytes in pages, microsecond durations), which is what the
codec's decimal mode feeds on.
"""
from __future__ import annotations

import random

INTERVAL = 10
HOUR = 3600


def series_specs():
    """(name, labels, kind) for the 40 reference series."""
    specs = [("cpu_utilization_percent", {}, "pct1"), ("memory_used_bytes", {}, "pages"),
             ("memory_available_bytes", {}, "pages"), ("memory_total_bytes", {}, "const"),
             ("swap_used_bytes", {}, "const"), ("disk_free_bytes", {"path": "/"}, "disk"),
             ("disk_free_bytes", {"path": "/ssd"}, "disk")]
    for zone in ("cpu-thermal", "gpu-thermal", "cv0-thermal", "cv1-thermal", "cv2-thermal", "soc0-thermal",
                 "soc1-thermal", "soc2-thermal", "tj-thermal", "tboard-thermal"):
        specs.append(("temperature_celsius", {"zone": zone}, "temp"))
    specs += [("gpu_temperature_celsius", {"gpu": "ga10b"}, "temp"),
              ("gpu_utilization_percent", {"gpu": "ga10b"}, "load"),
              ("gpu_frequency_hz", {"gpu": "ga10b"}, "freq"),
              ("gpu_frequency_max_hz", {"gpu": "ga10b"}, "const"),
              ("gpu_frequency_locked", {"gpu": "ga10b"}, "const"),
              ("gpu_memory_used_bytes", {"gpu": "ga10b"}, "pages"),
              ("gpu_memory_total_bytes", {"gpu": "ga10b"}, "const")]
    for rail in ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"):
        specs.append(("power_watts", {"rail": rail}, "power"))
    specs += [("fan_speed_percent", {"fan": "pwmfan"}, "fan"), ("backend_up", {}, "const"),
              ("backend_rss_bytes", {}, "pages")]
    for c in ("host", "thermal", "jetson_gpu", "power"):  # + fan below: 40 series
        specs.append(("ishowd_collector_duration_seconds", {"collector": c}, "dur"))
        specs.append(("ishowd_collector_success", {"collector": c}, "const"))
    specs.append(("ishowd_collector_duration_seconds", {"collector": "fan"}, "dur"))
    assert len(specs) == 40, len(specs)
    return specs


class Generator:
    """Values for one series, one hour at a time (a random walk where the source drifts)."""

    def __init__(self, kind: str, seed: int):
        self.kind, self.rng = kind, random.Random(seed)
        self.state = {"pages": 8 << 30, "disk": 200 << 30, "temp": 45000, "freq": 1300500000,
                      "power": (5000, 1200), "fan": 128}.get(kind, 0)

    def hour(self, n: int) -> list[float]:
        r, k, out = self.rng, self.kind, []
        for _ in range(n):
            if k == "const":
                v = 1.0 if not out else out[-1]
            elif k == "pct1":
                v = round(r.uniform(2, 60), 1)
            elif k == "load":
                v = r.choice((0, 0, 0, r.randrange(0, 1001))) / 10
            elif k == "pages":
                self.state += r.randrange(-64, 65) * 4096
                v = float(self.state)
            elif k == "disk":
                self.state -= r.randrange(0, 3) * 4096
                v = float(self.state)
            elif k == "temp":
                self.state = min(85000, max(30000, self.state + r.choice((-31, 0, 0, 0, 31, 62, -62))))
                v = self.state / 1000
            elif k == "freq":
                v = float(self.state if r.random() > 0.01 else r.choice((624750000, 930750000)))
            elif k == "power":
                mv, ma = self.state
                ma = max(100, ma + r.randrange(-40, 41))
                self.state = (mv, ma)
                v = mv * ma / 1e6
            elif k == "fan":
                if r.random() < 0.002:
                    self.state = r.randrange(80, 256)
                v = self.state * 100 / 255
            elif k == "dur":
                v = round(r.uniform(20e-6, 400e-6), 6)
            else:
                raise AssertionError(k)
            out.append(v)
        return out
