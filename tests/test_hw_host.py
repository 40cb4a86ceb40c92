"""CPU clocks (cpufreq), devfreq engines, and procfs's load, uptime, boot time, network and disk
counters on every fixture board. Each expected value is worked out by hand from the numbers
tests/fixtures/make_sysfs.py plants (kHz × 1000 = Hz; sectors × 512 = bytes; io_ticks ms / 1000 = s).
"""
from __future__ import annotations

import os
import shutil

import pytest

from hw_helpers import BOARDS, HOST_SOURCES, board_config, board_root, make, readings, run_all, tick, toml_text
from ishowd import catalog


def C(metric, cpu):
    return (metric, (("cpu", str(cpu)),))


def cores(cur_khz: dict, max_khz: int) -> dict:
    """cpu_frequency_hz and cpu_frequency_max_hz of the online cores; cur_khz {core: kHz or None}."""
    out = {C("cpu_frequency_max_hz", n): max_khz * 1000 for n in cur_khz}
    out.update({C("cpu_frequency_hz", n): khz * 1000 for n, khz in cur_khz.items() if khz is not None})
    return out


LOCKED = ("cpu_frequency_locked", ())


def E(metric, engine="15340000.vic"):
    return (metric, (("engine", engine),))


def vic(cur, cap, top=729600000):
    out = {E("engine_frequency_cap_hz"): cap, E("engine_frequency_max_hz"): top}
    if cur is not None:
        out[E("engine_frequency_hz")] = cur
    return out


def load(one, five, fifteen):
    return {("load_average", (("window", "1m"),)): one, ("load_average", (("window", "5m"),)): five,
            ("load_average", (("window", "15m"),)): fifteen}


def nic(name, rx, rx_errs, rx_drop, tx, tx_errs, tx_drop):
    labels = (("interface", name),)
    return {("network_receive_bytes_total", labels): rx, ("network_receive_errors_total", labels): rx_errs,
            ("network_receive_drops_total", labels): rx_drop, ("network_transmit_bytes_total", labels): tx,
            ("network_transmit_errors_total", labels): tx_errs, ("network_transmit_drops_total", labels): tx_drop}


def disk(name, sectors_read, sectors_written, io_ticks_ms):
    labels = (("device", name),)
    return {("disk_read_bytes_total", labels): sectors_read * 512,
            ("disk_written_bytes_total", labels): sectors_written * 512,
            ("disk_busy_seconds_total", labels): io_ticks_ms / 1000}


def system(load_avg, uptime, btime):
    out = {**load(*load_avg), ("uptime_seconds", ()): uptime}
    if btime is not None:
        out[("boot_timestamp_seconds", ())] = btime
    return out


# lo and veth1a2b3c are left out ([host] network_exclude), loop0 and zram0 ([host] disk_exclude),
# mmcblk0p1 and nvme0n1p1 as partitions
ORIN_PROCFS = {
    **system((2.35, 1.87, 1.42), 86412.37, 1699913588),
    **nic("eth0", 5368709120, 0, 12, 1073741824, 0, 0), **nic("wlan0", 1048576, 3, 7, 524288, 1, 0),
    **nic("l4tbr0", 0, 0, 0, 0, 0, 0), **nic("docker0", 0, 0, 0, 0, 0, 0),
    **disk("mmcblk0", 2097152, 4194304, 123456), **disk("mmcblk0boot0", 16, 0, 4),
    **disk("nvme0n1", 20971520, 41943040, 654321),
}

EXPECTED_HOST = {
    "orin-jp6-locked": {   # jetson_clocks in MAXN: every core at 2201.6 MHz, floor == cap == maximum
        **cores({n: 2201600 for n in range(12)}, 2201600), LOCKED: 1,
        **vic(729600000, 729600000), **ORIN_PROCFS,
    },
    "orin-jp6-unlocked": {  # schedutil: three clusters at three clocks
        **cores({**{n: 1113600 for n in range(4)}, **{n: 729600 for n in range(4, 8)},
                 **{n: 1497600 for n in range(8, 12)}}, 2201600), LOCKED: 0,
        **vic(115200000, 729600000), **ORIN_PROCFS,
    },
    "orin-jp6-capped": {    # 30W: cores 8-11 offline, the rest pinned at 1728 MHz, below the maximum
        **cores({n: 1728000 for n in range(8)}, 2201600), LOCKED: 0,
        **vic(601600000, 601600000), **ORIN_PROCFS,
    },
    "orin-jp5": {           # AGX Orin 32GB: eight cores, maximum 2188.8 MHz; no devfreq engine
        **cores({n: 2188800 for n in range(8)}, 2188800), LOCKED: 1, **ORIN_PROCFS,
    },
    "gpu0-scripts": {},     # no cpufreq, no engine, no procfs file but meminfo
    "xavier": {
        **cores({n: 2265600 for n in range(8)}, 2265600), LOCKED: 1,
        **system((0.52, 0.58, 0.59), 3600.0, 1699996400),
        **nic("eth0", 123456789, 0, 0, 98765432, 0, 0), **disk("mmcblk0", 1000000, 3000000, 50000),
    },
    "nano": {               # zram0-3 left out, mmcblk0p1 a partition
        **cores({n: 1036800 for n in range(4)}, 1479000), LOCKED: 0,
        **system((4.10, 3.95, 3.20), 600.5, 1699999400),
        **nic("eth0", 2000, 0, 0, 1000, 0, 0), **disk("mmcblk0", 512, 1024, 2000),
    },
    "x86-plain": {          # intel_pstate, a policy per core; ram0 left out, sda1 a partition
        **cores({0: 3400000, 1: 800000, 2: 1200000, 3: 4600000}, 4600000), LOCKED: 0,
        **system((0.08, 0.03, 0.01), 1234567.89, 1698765432),
        **nic("enp3s0", 987654321, 2, 0, 123456789, 0, 5),
        **disk("sda", 4096, 8192, 3000), **disk("nvme0n1", 1048576, 2097152, 77777),
    },
    "broken-sensors": {
        # cluster 4-7's scaling_cur_freq unreadable: only their current clock is lost
        **cores({0: 1190400, 1: 1190400, 2: 1190400, 3: 1190400, 4: None, 5: None, 6: None, 7: None}, 1984000),
        LOCKED: 0,
        **vic(None, 729600000),                     # cur_freq unreadable
        # loadavg empty, no btime in stat; eth1's line and sda's line mangled
        ("uptime_seconds", ()): 555.55,
        **nic("eth0", 4000, 1, 2, 3000, 4, 5), **disk("mmcblk0", 64, 128, 1000),
    },
}


@pytest.mark.parametrize("board", BOARDS)
def test_board_reads_exactly(board):
    got = run_all(board_config(board_root(board)), HOST_SOURCES)
    want = EXPECTED_HOST[board]
    assert sorted(got) == sorted(want), "series differ"
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_every_board_has_expectations():
    assert set(EXPECTED_HOST) == set(BOARDS)


@pytest.mark.parametrize("name,reason", [("cpufreq", "no cpufreq"), ("engines", "no devfreq engine besides the GPU"),
                                         ("procfs", "no loadavg, uptime, stat, net/dev or diskstats in")])
def test_a_host_without_the_source_skips_it(name, reason):
    cfg = board_config(board_root("gpu0-scripts"))
    assert make(name, cfg).setup().startswith(reason)


def test_the_plain_machine_has_no_engine():
    assert make("engines", board_config(board_root("x86-plain"))).setup() == "no devfreq engine besides the GPU"


@pytest.fixture
def copy_of(tmp_path):
    def copy(board):
        dst = tmp_path / board
        shutil.copytree(board_root(board), dst, symlinks=True)
        return dst
    return copy


CPU = "sys/devices/system/cpu"


def test_a_core_brought_online_is_read_from_the_next_tick(copy_of):
    root = copy_of("orin-jp6-capped")
    cfg = board_config(root)
    c = make("cpufreq", cfg)
    assert c.setup() is None
    assert C("cpu_frequency_hz", 8) not in readings(c.collect(tick(cfg)))
    # nvpmodel brings the third cluster up: the policy appears, then the links and the online list
    policy = root / CPU / "cpufreq/policy8"
    shutil.copytree(root / CPU / "cpufreq/policy4", policy)
    for n in (8, 9, 10, 11):
        (root / CPU / f"cpu{n}/online").write_text("1\n")
        os.symlink("../cpufreq/policy8", root / CPU / f"cpu{n}/cpufreq")
    (root / CPU / "online").write_text("0-11\n")
    got = readings(c.collect(tick(cfg)))
    assert got[C("cpu_frequency_hz", 11)] == 1728000 * 1000
    assert c.discoveries == 2
    list(c.collect(tick(cfg)))
    assert c.discoveries == 2          # once, not on every tick after


def test_a_core_taken_offline_is_dropped(copy_of):
    root = copy_of("orin-jp6-locked")
    cfg = board_config(root)
    c = make("cpufreq", cfg)
    assert c.setup() is None
    assert readings(c.collect(tick(cfg)))[LOCKED] == 1
    (root / CPU / "cpu11/online").write_text("0\n")
    os.remove(root / CPU / "cpu11/cpufreq")
    (root / CPU / "online").write_text("0-10\n")
    got = readings(c.collect(tick(cfg)))
    assert C("cpu_frequency_hz", 11) not in got and C("cpu_frequency_max_hz", 11) not in got
    assert got[C("cpu_frequency_hz", 10)] == 2201600 * 1000 and got[LOCKED] == 1


def unreadable(path):
    """The fixtures' stand-in for an attribute whose read fails: a directory in its place."""
    os.remove(path)
    os.mkdir(path)


def test_the_lock_is_absent_when_a_floor_cannot_be_read(copy_of):
    root = copy_of("orin-jp6-locked")
    unreadable(root / CPU / "cpufreq/policy4/scaling_min_freq")
    got = run_all(board_config(root), ("cpufreq",))
    assert LOCKED not in got
    assert got[C("cpu_frequency_hz", 4)] == 2201600 * 1000      # only the lock is lost


def test_one_cluster_scaling_settles_the_lock_whatever_another_hides(copy_of):
    root = copy_of("orin-jp6-unlocked")
    unreadable(root / CPU / "cpufreq/policy8/scaling_max_freq")
    assert run_all(board_config(root), ("cpufreq",))[LOCKED] == 0


def test_a_missing_maximum_leaves_the_lock_unknown(copy_of):
    root = copy_of("orin-jp6-locked")
    unreadable(root / CPU / "cpufreq/policy0/cpuinfo_max_freq")
    got = run_all(board_config(root), ("cpufreq",))
    assert LOCKED not in got and C("cpu_frequency_max_hz", 0) not in got
    assert got[C("cpu_frequency_max_hz", 4)] == 2201600 * 1000


def test_without_the_online_list_each_cores_online_file_decides(copy_of):
    root = copy_of("orin-jp6-capped")
    os.remove(root / CPU / "online")
    got = run_all(board_config(root), ("cpufreq",))
    assert sorted(dict(k[1])["cpu"] for k in got if k[0] == "cpu_frequency_hz") == [str(n) for n in range(8)]


def test_cores_of_one_policy_cost_one_read_each(monkeypatch):
    """Twelve cores in three clusters: three policies' three files, and the online list, per tick."""
    cfg = board_config(board_root("orin-jp6-locked"))
    c = make("cpufreq", cfg)
    assert c.setup() is None
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k))
    assert len(readings(c.collect(tick(cfg)))) == 12 * 2 + 1
    assert len(opened) == 3 * 3 + 1
    assert len(set(opened)) == len(opened)


def stat_with_btime(root, btime):
    stat = root / "proc/stat"
    lines = [f"btime {btime}" if line.startswith("btime ") else line for line in stat.read_text().splitlines()]
    stat.write_text("\n".join(lines) + "\n")


def test_boot_time_is_read_again_only_when_the_clock_steps(copy_of):
    root = copy_of("orin-jp6-locked")
    cfg = board_config(root)
    c = make("procfs", cfg)
    assert c.setup() is None
    boot = ("boot_timestamp_seconds", ())
    now = 1_699_913_588 + 86412.37
    assert readings(c.collect(tick(cfg, now)))[boot] == 1699913588
    stat_with_btime(root, 1699913999)
    # uptime and the wall clock advance together: no step, /proc/stat is not read
    (root / "proc/uptime").write_text("86422.37 1012345.10\n")
    assert readings(c.collect(tick(cfg, now + 10)))[boot] == 1699913588
    # NTP steps the clock forward by 411 s: the kernel's btime moved with it
    assert readings(c.collect(tick(cfg, now + 10 + 411)))[boot] == 1699913999


def test_excluded_interfaces_and_devices_follow_the_keys():
    text = toml_text(board_root("orin-jp6-locked")).replace(
        "[host]\n", '[host]\nnetwork_exclude = ["eth*"]\ndisk_exclude = []\n', 1)
    cfg = catalog.loads_config(text, "<test>")
    got = run_all(cfg, ("procfs",))
    interfaces = {dict(k[1])["interface"] for k in got if k[0].startswith("network_")}
    devices = {dict(k[1])["device"] for k in got if k[0].startswith("disk_")}
    assert interfaces == {"lo", "wlan0", "l4tbr0", "docker0", "veth1a2b3c"}
    # with nothing excluded, loop0 and zram0 are read; the partitions never are
    assert devices == {"loop0", "mmcblk0", "mmcblk0boot0", "nvme0n1", "zram0"}


def test_a_disk_plugged_in_later_is_read_and_its_partition_is_not(copy_of):
    root = copy_of("x86-plain")
    cfg = board_config(root)
    c = make("procfs", cfg)
    assert c.setup() is None
    list(c.collect(tick(cfg)))
    dev = root / "sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/block/sdb"
    dev.mkdir(parents=True)
    os.symlink(os.path.relpath(dev, root / "sys/block"), root / "sys/block/sdb")
    with open(root / "proc/diskstats", "a") as f:
        f.write("\n   8      16 sdb 10 0 2048 5 0 0 0 0 0 7 5 0 0 0 0 0 0\n"
                "   8      17 sdb1 10 0 2000 5 0 0 0 0 0 6 5 0 0 0 0 0 0\n")
    got = readings(c.collect(tick(cfg)))
    assert got[("disk_read_bytes_total", (("device", "sdb"),))] == 2048 * 512
    assert got[("disk_busy_seconds_total", (("device", "sdb"),))] == 0.007
    assert not [k for k in got if dict(k[1]).get("device") == "sdb1"]


def test_a_table_larger_than_one_read_is_read_whole(copy_of):
    root = copy_of("x86-plain")
    lines = [f"vethc{n:05d}:       1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0" for n in range(1500)]
    with open(root / "proc/net/dev", "a") as f:
        f.write("\n".join(lines) + "\n" + "  last0: 77 1 0 0 0 0 0 0 88 1 0 0 0 0 0 0\n")
    assert (root / "proc/net/dev").stat().st_size > 65536
    got = run_all(board_config(root), ("procfs",))
    assert got[("network_receive_bytes_total", (("interface", "last0"),))] == 77


@pytest.mark.parametrize("board", ["orin-jp6-locked", "x86-plain", "broken-sensors"])
def test_every_read_is_under_the_configured_roots(board, monkeypatch):
    root = str(board_root(board))
    cfg = board_config(board_root(board))
    seen = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *a, **k: seen.append(os.path.realpath(path))
                        or real_open(path, *a, **k))
    run_all(cfg, HOST_SOURCES)
    assert seen
    assert all(p.startswith(root + os.sep) for p in seen), [p for p in seen if not p.startswith(root)]


def test_file_system_size_beside_its_free_space(tmp_path):
    from conftest import write_config
    cfg = catalog.load_config(str(write_config(tmp_path)))
    c = make("host", cfg)
    assert c.setup() is None
    try:
        got = readings(c.collect(tick(cfg)))
    finally:
        c.close()
    sizes = {dict(k[1])["path"]: v for k, v in got.items() if k[0] == "disk_total_bytes"}
    assert sizes and set(sizes) == {dict(k[1])["path"] for k in got if k[0] == "disk_free_bytes"}
    for path, size in sizes.items():
        assert size == shutil.disk_usage(path).total
        assert got[("disk_free_bytes", (("path", path),))] <= size


def test_uptime_under_the_kernels_proc_is_its_clock_and_agrees_with_the_file():
    """Under /proc itself uptime comes from CLOCK_BOOTTIME, the clock the kernel writes
    /proc/uptime from: the two agree (to the file's hundredths and the moment between them)."""
    import time
    cfg = catalog.loads_config('[host]\nprocfs_root = "/proc"\n', "<test>")
    c = make("procfs", cfg)
    assert c.setup() is None
    with open("/proc/uptime") as f:
        before = float(f.read().split()[0])
    got = readings(c.collect(tick(cfg, time.time())))[("uptime_seconds", ())]
    with open("/proc/uptime") as f:
        after = float(f.read().split()[0])
    assert before <= got <= after + 0.01
    assert c._uptime is None           # no table is kept open for it
    c.close()
