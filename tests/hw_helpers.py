"""Shared helpers for the hardware-collector tests (fixture trees under tests/fixtures/sysfs)."""
from __future__ import annotations

from pathlib import Path

from ishowd import catalog
from ishowd.catalog import collectors
from ishowd.collectors import TickContext

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sysfs"
BOARDS = ("orin-jp6-locked", "orin-jp6-unlocked", "orin-jp6-capped", "orin-jp5", "gpu0-scripts",
          "xavier", "nano", "x86-plain", "broken-sensors")
# The collectors of this issue; "host" (psutil) reads the real machine's CPU and is not ours.
HARDWARE = ("jetson_gpu", "thermal", "power", "fan", "gpu_memory", "nvpmodel", "nvml", "jtop")
# What node_exporter and jtop users look for besides: CPU clocks, devfreq engines, procfs's counters.
HOST_SOURCES = ("cpufreq", "engines", "procfs")


def board_root(board: str) -> Path:
    return FIXTURES / board


def toml_text(root: Path | str, extra: str = "", *, nvpmodel: bool = True) -> str:
    root = Path(root)
    nvp = root / "bin" / "nvpmodel"
    nvp_line = f'nvpmodel_path = "{nvp}"' if nvpmodel and nvp.exists() else 'nvpmodel_path = "/nonexistent/nvpmodel"'
    return (f'[host]\nsysfs_root = "{root / "sys"}"\nprocfs_root = "{root / "proc"}"\n'
            f'[gpu]\n{nvp_line}\nnvml = "off"\njtop_socket = "/nonexistent/jtop.sock"\n' + extra)


def board_config(root: Path | str, **kw):
    return catalog.loads_config(toml_text(root, **kw), "<test>")


def make(name: str, cfg):
    return collectors()[name](cfg)


def tick(cfg, now: float = 1_700_000_000.0) -> TickContext:
    return TickContext(now=now, config=cfg)


def readings(samples) -> dict[tuple[str, tuple], float]:
    """{(metric name, sorted label items): value}; fails on a duplicate series."""
    out: dict[tuple[str, tuple], float] = {}
    for s in samples:
        key = (s.metric.name, tuple(sorted(s.labels.items())))
        assert key not in out, f"duplicate series {key}"
        out[key] = s.value
    return out


def run_all(cfg, names=HARDWARE) -> dict[tuple[str, tuple], float]:
    """Set up every named collector and take one tick; skipped ones add nothing."""
    samples = []
    for name in names:
        c = make(name, cfg)
        if c.setup() is None:
            samples += list(c.collect(tick(cfg)))
            c.close()
    return readings(samples)
