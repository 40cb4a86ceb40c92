"""Discovery is cached, re-done only when a path has gone, and every read stays under the roots."""
from __future__ import annotations

import os
import shutil

import pytest

from ishowd.collectors import _gpu
from ishowd.collectors.thermal import is_gpu_zone
from hw_helpers import board_config, board_root, make, readings, tick

SYSFS_COLLECTORS = ("jetson_gpu", "thermal", "power", "fan")


@pytest.fixture
def orin_copy(tmp_path):
    """A private copy of the locked Orin tree (symlinks kept as symlinks) that a test may damage."""
    dst = tmp_path / "orin"
    shutil.copytree(board_root("orin-jp6-locked"), dst, symlinks=True)
    return dst


@pytest.mark.parametrize("name", SYSFS_COLLECTORS + ("gpu_memory",))
def test_collect_lists_no_directory(name, monkeypatch):
    """collect() reads the cached paths: no listing, no globbing, on any tick."""
    cfg = board_config(board_root("orin-jp6-locked"))
    c = make(name, cfg)
    assert c.setup() is None
    first = readings(c.collect(tick(cfg)))

    def forbidden(*a, **k):
        raise AssertionError("directory listed during collect()")
    monkeypatch.setattr(os, "listdir", forbidden)
    monkeypatch.setattr(os, "scandir", forbidden)
    for _ in range(3):
        assert readings(c.collect(tick(cfg))) == first


@pytest.mark.parametrize("name", SYSFS_COLLECTORS)
def test_broken_sensors_do_not_trigger_rediscovery(name):
    """EISDIR/EAGAIN, empty and non-numeric files drop a sample; the sensor is still there."""
    cfg = board_config(board_root("broken-sensors"))
    c = make(name, cfg)
    assert c.setup() is None
    for _ in range(5):
        list(c.collect(tick(cfg)))
    assert c.discoveries == 1


def test_vanished_sensor_is_rediscovered_once(orin_copy):
    cfg = board_config(orin_copy)
    c = make("thermal", cfg)
    assert c.setup() is None
    assert ("temperature_celsius", (("zone", "tboard-thermal"),)) in readings(c.collect(tick(cfg)))
    # the zone disappears (hot-unplug, driver unbound): its `temp` read fails with ENOENT
    os.remove(orin_copy / "sys/devices/virtual/thermal/thermal_zone9/temp")
    got = readings(c.collect(tick(cfg)))
    assert ("temperature_celsius", (("zone", "tboard-thermal"),)) not in got
    assert ("temperature_celsius", (("zone", "cpu-thermal"),)) in got   # the others still read
    assert c.discoveries == 1
    list(c.collect(tick(cfg)))             # the next tick re-discovers, without the gone zone
    assert c.discoveries == 2
    for _ in range(3):
        list(c.collect(tick(cfg)))
    assert c.discoveries == 2


def test_gpu_moved_is_found_again(orin_copy):
    """A failing read makes the next tick re-discover: new paths are picked up."""
    cfg = board_config(orin_copy)
    c = make("jetson_gpu", cfg)
    assert c.setup() is None
    gpu = orin_copy / "sys/devices/platform/bus@0/17000000.gpu"
    os.rename(gpu / "load", gpu / "load.moved")
    got = readings(c.collect(tick(cfg)))
    assert ("gpu_utilization_percent", (("gpu", "17000000.gpu"),)) not in got
    assert ("gpu_frequency_hz", (("gpu", "17000000.gpu"),)) in got
    os.rename(gpu / "load.moved", gpu / "load")
    got = readings(c.collect(tick(cfg)))
    assert got[("gpu_utilization_percent", (("gpu", "17000000.gpu"),))] == 52.3
    assert c.discoveries == 2


def test_power_rediscovers_when_hwmon_renumbers(orin_copy):
    """hwmon numbers change between boots and driver reloads; the rails are found again."""
    cfg = board_config(orin_copy)
    c = make("power", cfg)
    assert c.setup() is None
    before = readings(c.collect(tick(cfg)))
    dev = orin_copy / "sys/devices/platform/bus@0/c240000.i2c/i2c-1/1-0040/hwmon"
    os.rename(dev / "hwmon1", dev / "hwmon7")
    list(c.collect(tick(cfg)))
    assert readings(c.collect(tick(cfg))) == before
    assert c.discoveries == 2


@pytest.mark.parametrize("board", ["orin-jp6-locked", "nano", "x86-plain", "broken-sensors"])
def test_every_read_is_under_the_configured_roots(board, monkeypatch):
    root = str(board_root(board))
    cfg = board_config(board_root(board), nvpmodel=False)
    seen = []
    real_open = os.open

    def spy(path, *a, **k):
        seen.append(os.path.realpath(path))
        return real_open(path, *a, **k)
    monkeypatch.setattr(os, "open", spy)
    for name in SYSFS_COLLECTORS + ("gpu_memory",):
        c = make(name, cfg)
        if c.setup() is None:
            list(c.collect(tick(cfg)))
    assert seen
    assert all(p.startswith(root + os.sep) for p in seen), [p for p in seen if not p.startswith(root)]


def test_gpu_discovery_ignores_other_devfreq_devices():
    cfg = board_config(board_root("orin-jp6-locked"))
    gpus = _gpu.find_jetson_gpus(cfg)
    assert [g.label for g in gpus] == ["17000000.gpu"]      # not 15340000.vic
    assert gpus[0].node == "gpu"                            # the device-tree name, NUL stripped
    assert gpus[0].devfreq.endswith("bus@0/17000000.gpu/devfreq/17000000.gpu")
    assert gpus[0].device.endswith("bus@0/17000000.gpu")


@pytest.mark.parametrize("node,gpu", [("gpu", True), ("ga10b", True), ("gv11b", True), ("gp10b", True),
                                      ("gb10b", True), ("gpu-gpc-0", True), ("vic", False), ("nvdec", False)])
def test_gpu_node_names(node, gpu):
    assert _gpu.is_gpu_node(node) is gpu


@pytest.mark.parametrize("zone,gpu", [("gpu-thermal", True), ("GPU-therm", True), ("cpu-thermal", False),
                                      ("tj-thermal", False), ("soc0-thermal", False)])
def test_gpu_zone_names(zone, gpu):
    assert is_gpu_zone(zone) is gpu


def test_no_thermal_zones_is_a_skip_not_an_error(tmp_path):
    (tmp_path / "sys").mkdir()
    (tmp_path / "proc").mkdir()
    cfg = board_config(tmp_path)
    for name, reason in [("thermal", "no thermal zones"), ("jetson_gpu", "no devfreq GPU"),
                         ("power", "no INA3221 power monitor"), ("fan", "no fan")]:
        assert make(name, cfg).setup() == reason
    assert "no Jetson GPU" in make("gpu_memory", cfg).setup()

