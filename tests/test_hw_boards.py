"""Every fixture board reads exactly: each expected value below was worked out by hand from
the numbers written into the tree by tests/fixtures/make_sysfs.py (not copied from output).

Units: load per-mille / 10 = percent; temp m°C / 1000; power mV × mA / 10⁶ W;
pwm × 100 / 255 %; meminfo kB × 1024 bytes.
"""
from __future__ import annotations

import pytest

from hw_helpers import BOARDS, board_config, board_root, run_all


def G(metric, gpu="17000000.gpu"):
    return (metric, (("gpu", gpu),))


def Z(zone):
    return ("temperature_celsius", (("zone", zone),))


def R(rail):
    return ("power_watts", (("rail", rail),))


def F(fan, metric="fan_speed_percent"):
    return (metric, (("fan", fan),))


def gpu_block(gpu, util, cur, floor, cap, top, locked):
    out = {G("gpu_frequency_hz", gpu): cur, G("gpu_frequency_floor_hz", gpu): floor,
           G("gpu_frequency_cap_hz", gpu): cap, G("gpu_frequency_max_hz", gpu): top,
           G("gpu_frequency_locked", gpu): locked}
    if util is not None:
        out[G("gpu_utilization_percent", gpu)] = util
    return out


ORIN_RAILS = {R("VDD_GPU_SOC"): 19200 * 250 / 1e6, R("VDD_CPU_CV"): 19200 * 100 / 1e6,
              R("VIN_SYS_5V0"): 5000 * 700 / 1e6, R("VDDQ_VDD2_1V8AO"): 5000 * 120 / 1e6}
ORIN_MEM = {G("gpu_memory_used_bytes"): 1847296 * 1024, G("gpu_memory_total_bytes"): 64335836 * 1024}
MAXN = {("power_mode_id", (("mode", "MAXN"),)): 0}


def orin_zones(values):
    names = ["cpu-thermal", "gpu-thermal", "cv0-thermal", "cv1-thermal", "cv2-thermal", "soc0-thermal",
             "soc1-thermal", "soc2-thermal", "tj-thermal", "tboard-thermal", "tdiode-thermal"]
    return {Z(n): v for n, v in zip(names, values) if v is not None}


EXPECTED = {
    "orin-jp6-locked": {
        **gpu_block("17000000.gpu", 52.3, 1300500000, 1300500000, 1300500000, 1300500000, 1),
        **orin_zones([47.218, 44.656, 43.5, 43.406, 43.75, 44.125, 44.031, 43.875, 47.218, 37.0, 38.25]),
        G("gpu_temperature_celsius"): 44.656,
        **ORIN_RAILS, **ORIN_MEM, **MAXN,
        F("pwmfan"): 100.0, F("pwmfan", "fan_speed_rpm"): 5250,
    },
    "orin-jp6-unlocked": {   # scaling freely; DLA off: cv zones unreadable
        **gpu_block("17000000.gpu", 8.7, 612000000, 306000000, 1300500000, 1300500000, 0),
        **orin_zones([41.593, 39.781, None, None, None, 40.125, 40.0, 39.906, 41.593, 35.0, 36.5]),
        G("gpu_temperature_celsius"): 39.781,
        **ORIN_RAILS, **ORIN_MEM, **MAXN,
        F("pwmfan"): 40.0, F("pwmfan", "fan_speed_rpm"): 2310,
    },
    "orin-jp6-capped": {     # min == max, but at the 30W cap: not locked at maximum
        **gpu_block("17000000.gpu", 99.0, 816000000, 816000000, 816000000, 1300500000, 0),
        **orin_zones([52.093, 50.718, 49.5, 49.406, 49.75, 50.125, 50.031, 49.875, 52.093, 40.0, 41.25]),
        G("gpu_temperature_celsius"): 50.718,
        **ORIN_RAILS, **ORIN_MEM,
        ("power_mode_id", (("mode", "30W"),)): 2,
        F("pwmfan"): 60.0, F("pwmfan", "fan_speed_rpm"): 3480,
    },
    "orin-jp5": {
        **gpu_block("17000000.ga10b", 34.1, 1300500000, 1300500000, 1300500000, 1300500000, 1),
        Z("CPU-therm"): 45.562, Z("GPU-therm"): 43.093, Z("CV0-therm"): 42.5, Z("CV1-therm"): 42.25,
        Z("CV2-therm"): 42.625, Z("SOC0-therm"): 43.187, Z("SOC1-therm"): 43.0, Z("SOC2-therm"): 42.812,
        Z("Tboard_tegra"): 36.0, Z("Tdiode_tegra"): 37.25, Z("tj-therm"): 45.562,
        G("gpu_temperature_celsius", "17000000.ga10b"): 43.093,
        R("VDD_GPU_SOC"): 11.98, R("VDD_CPU_CV"): 4.792, R("VIN_SYS_5V0"): 2.9856, R("VDDQ_VDD2_1V8AO"): 0.4992,
        G("gpu_memory_used_bytes", "17000000.ga10b"): 943718400,
        G("gpu_memory_total_bytes", "17000000.ga10b"): 31746420736,
        **MAXN,
        F("pwmfan"): 80.0, F("pwmfan", "fan_speed_rpm"): 4410,
    },
    "gpu0-scripts": {
        **gpu_block("17000000.ga10b", 0.0, 1300500000, 1300500000, 1300500000, 1300500000, 1),
        Z("CPU-therm"): 40.5, Z("GPU-therm"): 38.5, Z("SOC0-therm"): 39.0, Z("tj-therm"): 40.5,
        G("gpu_temperature_celsius", "17000000.ga10b"): 38.5,
        G("gpu_memory_used_bytes", "17000000.ga10b"): 268435456,
        G("gpu_memory_total_bytes", "17000000.ga10b"): 65879896064,
    },
    "xavier": {
        **gpu_block("17000000.gv11b", 27.5, 1377000000, 1377000000, 1377000000, 1377000000, 1),
        Z("AUX-therm"): 39.5, Z("CPU-therm"): 41.0, Z("thermal-fan-est"): 40.3, Z("Tdiode_tegra"): 40.25,
        Z("AO-therm"): 39.0, Z("GPU-therm"): 40.5, Z("Tboard_tegra"): 38.0,        # PMIC-Die: a limit
        G("gpu_temperature_celsius", "17000000.gv11b"): 40.5,
        R("GPU"): 5.930496, R("CPU"): 2.376, R("SOC"): 3.04128, R("CV"): 0.0, R("VDDRQ"): 0.76032,
        R("SYS5V"): 1.9968,
        G("gpu_memory_used_bytes", "17000000.gv11b"): 536870912,
        G("gpu_memory_total_bytes", "17000000.gv11b"): 33400426496,
        **MAXN,
        F("pwmfan"): 77 * 100 / 255,
    },
    "nano": {
        **gpu_block("57000000.gpu", 12.0, 153600000, 76800000, 921600000, 921600000, 0),
        Z("AO-therm"): 35.5, Z("CPU-therm"): 36.5, Z("GPU-therm"): 35.0, Z("PLL-therm"): 33.5,
        Z("thermal-fan-est"): 35.9,
        G("gpu_temperature_celsius", "57000000.gpu"): 35.0,
        R("POM_5V_IN"): 6.0, R("total"): 6.0, R("POM_5V_GPU"): 0.4, R("POM_5V_CPU"): 1.5,
        G("gpu_memory_used_bytes", "57000000.gpu"): 381681664,
        G("gpu_memory_total_bytes", "57000000.gpu"): 4148273152,
        **MAXN,
        F("pwm-fan"): 0.0, F("pwm-fan", "fan_speed_rpm"): 0,
    },
    "x86-plain": {
        Z("acpitz.0"): 27.8, Z("acpitz.1"): 29.8, Z("x86_pkg_temp"): 42.0,
        F("nct6798"): 128 * 100 / 255, F("nct6798", "fan_speed_rpm"): 812,
    },
    "broken-sensors": {
        # load is an empty file: no utilisation; everything else of the GPU reads
        **gpu_block("17000000.gpu", None, 918000000, 306000000, 1300500000, 1300500000, 0),
        # cv0 unreadable, cv1 -256 °C, cv2 empty, soc0 "N/A", soc1 dangling, PMIC-Die a limit
        Z("cpu-thermal"): 48.5, Z("gpu-thermal"): 46.25, Z("tj-thermal"): 48.5,
        G("gpu_temperature_celsius"): 46.25,
        # VDD_CPU_GPU_CV's voltage is "abc", VDD_SOC's current unreadable
        R("VDD_IN"): 7.5, R("total"): 7.5,
        G("gpu_memory_used_bytes"): 524288 * 1024, G("gpu_memory_total_bytes"): 16089428 * 1024,
        # pwm1 is empty; the tachometer still reads, under the one fan's name
        F("pwmfan", "fan_speed_rpm"): 1800,
    },
}


@pytest.mark.parametrize("board", BOARDS)
def test_board_reads_exactly(board):
    got = run_all(board_config(board_root(board)))
    want = EXPECTED[board]
    assert sorted(got) == sorted(want), "series differ"
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_every_board_has_expectations():
    assert set(EXPECTED) == set(BOARDS)


def test_plain_machine_has_no_gpu_metric_at_all():
    got = run_all(board_config(board_root("x86-plain")))
    assert got, "the plain machine still has thermal zones and a fan"
    assert not [k for k in got if k[0].startswith("gpu_") or k[0] in ("power_watts", "power_mode_id")]


@pytest.mark.parametrize("board", ["orin-jp6-locked", "orin-jp5", "gpu0-scripts", "xavier", "nano"])
def test_one_gpu_label_across_collectors(board):
    """Utilisation, temperature and memory of one Jetson GPU share one stable gpu label."""
    got = run_all(board_config(board_root(board)))
    labels = {dict(k[1])["gpu"] for k in got if k[0].startswith("gpu_")}
    assert len(labels) == 1
    again = run_all(board_config(board_root(board)))
    assert {dict(k[1])["gpu"] for k in again if k[0].startswith("gpu_")} == labels
