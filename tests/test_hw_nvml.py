"""The NVML collector's logic against a small pynvml-shaped stand-in (the GPU is the one thing
a test may stand in for). The real comparison with nvidia-smi is in docs/hardware.md."""
from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest

from hw_helpers import board_config, board_root, make, readings, tick

UUID0 = "GPU-1b2d3c4e-0000-1111-2222-333344445555"
UUID1 = "GPU-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff"


class NVMLError(Exception):
    def __init__(self, value):
        self.value = value
        super().__init__({3: "Not Supported", 9: "Driver Not Loaded", 12: "NVML Shared Library Not Found",
                          13: "Function Not Found"}.get(value, f"code {value}"))


def fake_pynvml(gpus, *, init_error=None, with_temperature_v=True, with_event_reasons=True, memory_v2=True):
    """gpus: [dict(uuid=, util=, used=, total=, temp=, clock=, max_clock=, power_mw=, fan=, reasons=)];
    a field whose value is an int error code raises NVMLError(code)."""
    m = types.ModuleType("pynvml")
    m.NVMLError = NVMLError
    m.NVML_TEMPERATURE_GPU = 0
    m.NVML_CLOCK_GRAPHICS = 0
    m.calls = {}

    def field(h, name, wrap=lambda v: v):
        m.calls[(h, name)] = m.calls.get((h, name), 0) + 1
        v = gpus[h][name]
        if isinstance(v, NVMLError):
            raise v
        return wrap(v)

    def init():
        if init_error is not None:
            raise NVMLError(init_error)
    m.nvmlInit = init
    m.nvmlShutdown = lambda: None
    m.nvmlDeviceGetCount = lambda: len(gpus)
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetUUID = lambda h: gpus[h]["uuid"]
    m.nvmlSystemGetDriverVersion = lambda: "570.00"
    m.nvmlDeviceGetUtilizationRates = lambda h: field(h, "util", lambda v: SimpleNamespace(gpu=v, memory=0))
    def memory(h, version=None):
        # v1 (no version) counts the driver's reservation as used, as the real call does
        g = gpus[h]
        if version is None:
            used = field(h, "used") + g["reserved"]
            return SimpleNamespace(used=used, total=g["total"], free=g["total"] - used)
        if not memory_v2:
            raise NVMLError(13)
        assert version == m.nvmlMemory_v2
        used = field(h, "used")
        return SimpleNamespace(version=version, used=used, reserved=g["reserved"], total=g["total"],
                               free=g["total"] - used - g["reserved"])
    m.nvmlMemory_v2 = 0x02000028
    m.nvmlDeviceGetMemoryInfo = memory
    if with_temperature_v:
        m.nvmlDeviceGetTemperatureV = lambda h, sensor: field(h, "temp")
    m.nvmlDeviceGetTemperature = lambda h, sensor: field(h, "temp")
    m.nvmlDeviceGetClockInfo = lambda h, t: field(h, "clock")
    m.nvmlDeviceGetMaxClockInfo = lambda h, t: field(h, "max_clock")
    m.nvmlDeviceGetPowerUsage = lambda h: field(h, "power_mw")
    m.nvmlDeviceGetFanSpeed = lambda h: field(h, "fan")
    if with_event_reasons:
        m.nvmlDeviceGetCurrentClocksEventReasons = lambda h: field(h, "reasons")
    m.nvmlDeviceGetCurrentClocksThrottleReasons = lambda h: field(h, "reasons")
    return m


def gpu(**kw):
    base = dict(uuid=UUID0, util=37, used=81_000_000_000, reserved=644_939_776, total=150_754_820_096, temp=34, clock=1980,
                max_clock=1980, power_mw=118_523, fan=NVMLError(3), reasons=0x0)
    base.update(kw)
    return base


@pytest.fixture
def cfg(tmp_path):
    (tmp_path / "sys").mkdir()
    (tmp_path / "proc").mkdir()
    return board_config(tmp_path, extra="")


def with_nvml(cfg, value="auto"):
    from ishowd import catalog
    text = f'[host]\nsysfs_root = "{cfg.host.sysfs_root}"\nprocfs_root = "{cfg.host.procfs_root}"\n' \
           f'[gpu]\nnvml = "{value}"\n'
    return catalog.loads_config(text, "<test>")


def setup_with(monkeypatch, cfg, module):
    monkeypatch.setitem(sys.modules, "pynvml", module)
    c = make("nvml", with_nvml(cfg))
    return c, c.setup()


def test_reads_every_field_with_uuid_labels(monkeypatch, cfg):
    m = fake_pynvml([gpu(fan=41, reasons=0x4 | 0x40)])
    c, reason = setup_with(monkeypatch, cfg, m)
    assert reason is None
    got = readings(c.collect(tick(cfg)))
    g = (("gpu", UUID0),)
    assert got[("gpu_utilization_percent", g)] == 37.0
    assert got[("gpu_memory_used_bytes", g)] == 81_000_000_000
    assert got[("gpu_memory_total_bytes", g)] == 150_754_820_096
    assert got[("gpu_memory_reserved_bytes", g)] == 644_939_776
    assert got[("gpu_temperature_celsius", g)] == 34.0
    assert got[("gpu_frequency_hz", g)] == 1_980_000_000
    assert got[("gpu_frequency_max_hz", g)] == 1_980_000_000
    assert got[("gpu_frequency_locked", g)] == 1.0
    assert got[("power_watts", (("rail", UUID0),))] == 118.523
    assert got[("fan_speed_percent", (("fan", UUID0),))] == 41.0
    reasons = {dict(k[1])["reason"]: v for k, v in got.items() if k[0] == "gpu_clock_event_reason"}
    assert reasons == {"gpu_idle": 0, "applications_clocks_setting": 0, "sw_power_cap": 1, "hw_slowdown": 0,
                       "sync_boost": 0, "sw_thermal_slowdown": 0, "hw_thermal_slowdown": 1,
                       "hw_power_brake_slowdown": 0, "display_clock_setting": 0}


def test_below_max_clock_is_not_locked(monkeypatch, cfg):
    m = fake_pynvml([gpu(clock=345, reasons=0x1)])
    c, _ = setup_with(monkeypatch, cfg, m)
    got = readings(c.collect(tick(cfg)))
    assert got[("gpu_frequency_locked", (("gpu", UUID0),))] == 0.0
    assert got[("gpu_frequency_hz", (("gpu", UUID0),))] == 345_000_000


def test_lock_is_absent_when_a_clock_cannot_be_read(monkeypatch, cfg):
    m = fake_pynvml([gpu(max_clock=NVMLError(3))])
    c, _ = setup_with(monkeypatch, cfg, m)
    got = readings(c.collect(tick(cfg)))
    assert ("gpu_frequency_locked", (("gpu", UUID0),)) not in got
    assert ("gpu_frequency_max_hz", (("gpu", UUID0),)) not in got
    assert ("gpu_frequency_hz", (("gpu", UUID0),)) in got


def test_not_supported_fan_is_absent_for_that_gpu_only_and_never_asked_again(monkeypatch, cfg):
    m = fake_pynvml([gpu(), gpu(uuid=UUID1, fan=55)])
    c, reason = setup_with(monkeypatch, cfg, m)
    assert reason is None
    for _ in range(3):
        got = readings(c.collect(tick(cfg)))
        assert ("fan_speed_percent", (("fan", UUID0),)) not in got
        assert got[("fan_speed_percent", (("fan", UUID1),))] == 55.0
        assert got[("gpu_utilization_percent", (("gpu", UUID0),))] == 37.0      # the rest still reads
    assert m.calls[(0, "fan")] == 1
    assert m.calls[(1, "fan")] == 3


def test_other_errors_drop_the_field_for_this_tick_only(monkeypatch, cfg):
    g = gpu(temp=NVMLError(999))
    m = fake_pynvml([g])
    c, _ = setup_with(monkeypatch, cfg, m)
    assert ("gpu_temperature_celsius", (("gpu", UUID0),)) not in readings(c.collect(tick(cfg)))
    g["temp"] = 35
    assert readings(c.collect(tick(cfg)))[("gpu_temperature_celsius", (("gpu", UUID0),))] == 35.0


def test_old_driver_falls_back_to_legacy_getters(monkeypatch, cfg):
    m = fake_pynvml([gpu(reasons=0x1)], with_temperature_v=False, with_event_reasons=False, memory_v2=False)
    c, _ = setup_with(monkeypatch, cfg, m)
    got = readings(c.collect(tick(cfg)))
    # v1 memory: the reservation is counted as used, and there is no reserved figure
    assert got[("gpu_memory_used_bytes", (("gpu", UUID0),))] == 81_000_000_000 + 644_939_776
    assert ("gpu_memory_reserved_bytes", (("gpu", UUID0),)) not in got
    assert got[("gpu_temperature_celsius", (("gpu", UUID0),))] == 34.0
    assert got[("gpu_clock_event_reason", (("gpu", UUID0), ("reason", "gpu_idle")))] == 1.0


@pytest.mark.parametrize("code,text", [(12, "NVML Shared Library Not Found"), (9, "Driver Not Loaded")])
def test_no_driver_is_reported_once_by_setup(monkeypatch, cfg, code, text):
    m = fake_pynvml([gpu()], init_error=code)
    c, reason = setup_with(monkeypatch, cfg, m)
    assert reason == f"no NVIDIA driver ({text})"


def test_not_installed(monkeypatch, cfg):
    monkeypatch.setitem(sys.modules, "pynvml", None)     # import pynvml raises ImportError
    c = make("nvml", with_nvml(cfg))
    assert "nvidia-ml-py is not installed" in c.setup()


def test_no_gpu(monkeypatch, cfg):
    c, reason = setup_with(monkeypatch, cfg, fake_pynvml([]))
    assert reason == "no NVIDIA GPU"


def test_steps_aside_on_a_jetson_unless_asked(monkeypatch):
    jetson = board_config(board_root("orin-jp6-locked"))
    m = fake_pynvml([gpu()])
    monkeypatch.setitem(sys.modules, "pynvml", m)
    assert "Jetson GPU" in make("nvml", with_nvml(jetson, "auto")).setup()
    assert make("nvml", with_nvml(jetson, "on")).setup() is None
    assert "disabled" in make("nvml", with_nvml(jetson, "off")).setup()


def test_daemon_never_imports_heavy_modules():
    """Importing every collector must not pull torch/numpy/matplotlib into the daemon."""
    import subprocess
    code = ("import sys; from ishowd.catalog import collectors; collectors(); "
            "bad=[m for m in ('torch','numpy','matplotlib','pynvml','jtop') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_field_not_supported_is_logged_once_per_process_however_many_readers(monkeypatch, cfg, caplog):
    """The audit and the benchmark read the GPU through collectors of their own, again and again."""
    import logging

    from ishowd.collectors import nvml
    monkeypatch.setattr(nvml, "_TOLD", set())
    m = fake_pynvml([gpu(uuid="GPU-0000-told-once")])        # fan: NotSupported
    with caplog.at_level(logging.INFO, logger="ishowd.collectors.nvml"):
        for _ in range(3):
            c, reason = setup_with(monkeypatch, cfg, m)
            assert reason is None
            list(c.collect(tick(cfg)))
            c.close()
    told = [r for r in caplog.records if "fan is not supported" in r.getMessage()]
    assert len(told) == 1
