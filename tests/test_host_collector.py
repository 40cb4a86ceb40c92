"""The host collector reads CPU and memory from procfs itself: its figures must be psutil's
(``cpu_percent``, ``virtual_memory``, swap as SwapTotal - SwapFree), here asked of psutil over the
same procfs tree at the same moments."""
from __future__ import annotations

import os
import time

import psutil
import pytest

from ishowd import catalog
from ishowd.collectors import TickContext
from ishowd.collectors._sysfs import KeptFile
from ishowd.collectors.host import HostCollector

MEMINFO = """MemTotal:       31026176 kB
MemFree:         1234567 kB
MemAvailable:   20480000 kB
Buffers:          102400 kB
Cached:          8000000 kB
Shmem:            200000 kB
SwapCached:            0 kB
Active:          4000000 kB
Inactive:        3000000 kB
SwapTotal:      15513088 kB
SwapFree:       15000000 kB
NvMapMemUsed:    1048576 kB
"""

# user nice system idle iowait irq softirq steal guest guest_nice
STATS = [
    (1000, 10, 300, 9000, 50, 5, 5, 0, 0, 0),
    (1600, 10, 500, 9300, 150, 6, 9, 0, 0, 0),          # busy, with iowait
    (2600, 40, 520, 9310, 150, 6, 9, 3, 800, 20),        # guest time, already in user and nice
    (2500, 40, 530, 9900, 140, 6, 9, 3, 800, 20),        # user and iowait went back (a core unplugged)
    (2500, 40, 530, 9900, 140, 6, 9, 3, 800, 20),        # nothing moved
]


def stat_text(times) -> str:
    per_cpu = "".join(f"cpu{n} " + " ".join(str(t // 4) for t in times) + "\n" for n in range(4))
    return ("cpu  " + " ".join(map(str, times)) + "\n" + per_cpu +
            "intr 12345 0 0\nctxt 999\nbtime 1699913588\nprocesses 4242\n")


@pytest.fixture
def procfs(tmp_path, monkeypatch):
    root = tmp_path / "proc"
    root.mkdir()
    monkeypatch.setattr(psutil, "PROCFS_PATH", str(root))
    return root


def collector(root, tmp_path):
    cfg = catalog.loads_config(f'[host]\nprocfs_root = "{root}"\n[storage]\npath = "{tmp_path / "s.db"}"\n')
    c = HostCollector(cfg)
    assert c.setup() is None
    return c, cfg


def read(c, cfg) -> dict:
    c._cpu_at -= 1.0            # the last reading is a second old: no 0.1 s wait for a fresh one
    return {s.metric.name: s.value for s in c.collect(TickContext(now=time.time(), config=cfg)) if not s.labels}


def test_cpu_percent_is_psutils_reckoning(procfs, tmp_path):
    (procfs / "meminfo").write_text(MEMINFO)
    (procfs / "stat").write_text(stat_text(STATS[0]))
    c, cfg = collector(procfs, tmp_path)
    psutil.cpu_percent(interval=None)               # psutil's first reading, as setup() took ours
    for times in STATS[1:]:
        (procfs / "stat").write_text(stat_text(times))
        ours = read(c, cfg)["cpu_utilization_percent"]
        assert ours == psutil.cpu_percent(interval=None), times
    assert ours == 0.0


def test_memory_and_swap_are_psutils(procfs, tmp_path):
    (procfs / "stat").write_text(stat_text(STATS[0]))
    (procfs / "meminfo").write_text(MEMINFO)
    c, cfg = collector(procfs, tmp_path)
    got = read(c, cfg)
    vm = psutil.virtual_memory()
    assert got["memory_total_bytes"] == vm.total == 31026176 * 1024
    assert got["memory_available_bytes"] == vm.available == 20480000 * 1024
    assert got["memory_used_bytes"] == vm.total - vm.available
    assert got["swap_used_bytes"] == (15513088 - 15000000) * 1024


def test_a_kernel_without_memavailable_gets_psutils_estimate(procfs, tmp_path):
    (procfs / "stat").write_text(stat_text(STATS[0]))
    (procfs / "meminfo").write_text("".join(line + "\n" for line in MEMINFO.splitlines()
                                            if not line.startswith("MemAvailable")))
    c, cfg = collector(procfs, tmp_path)
    got = read(c, cfg)
    assert got["memory_available_bytes"] == psutil.virtual_memory().available
    assert got["memory_total_bytes"] == 31026176 * 1024


def test_a_missing_or_broken_file_costs_only_its_own_metrics(procfs, tmp_path):
    (procfs / "meminfo").write_text(MEMINFO)
    c, cfg = collector(procfs, tmp_path)            # no stat: no cpu, memory still reads
    got = read(c, cfg)
    assert "cpu_utilization_percent" not in got and got["memory_total_bytes"] == 31026176 * 1024
    (procfs / "stat").write_text("garbage\n")
    assert "cpu_utilization_percent" not in read(c, cfg)
    (procfs / "stat").write_text(stat_text(STATS[0]))
    read(c, cfg)                                    # the first good reading: the next has a CPU figure
    (procfs / "stat").write_text(stat_text(STATS[1]))
    (procfs / "meminfo").unlink()
    got = read(c, cfg)
    assert got["cpu_utilization_percent"] > 0 and "memory_total_bytes" not in got


def test_on_this_machine_the_same_as_psutil():
    cfg = catalog.loads_config("")
    c = HostCollector(cfg)
    c.setup()
    got = read(c, cfg)
    assert got["memory_total_bytes"] == psutil.virtual_memory().total
    assert 0 <= got["cpu_utilization_percent"] <= 100


def test_a_kept_file_reads_what_the_file_holds_now(tmp_path):
    """The descriptor stays open across reads, and a read gives the file's text of that moment:
    written over in place, replaced by another file, gone."""
    path = tmp_path / "loadavg"
    path.write_text("0.10 0.20 0.30 1/100 42\n")
    kept = KeptFile(str(path))
    assert kept.read() == b"0.10 0.20 0.30 1/100 42\n"
    fd = kept._fd
    path.write_text("9.99 0.20 0.30 1/100 42\n")          # in place, as the kernel's text changes
    assert kept.read().startswith(b"9.99") and kept._fd == fd
    path.unlink()
    (tmp_path / "new").write_text("1.00 2.00 3.00 1/100 42\n")
    (tmp_path / "new").rename(path)                         # another file under the path
    assert kept.read().startswith(b"1.00")
    path.unlink()
    with pytest.raises(FileNotFoundError):
        kept.read()
    kept.close()


def test_a_kept_file_reads_a_table_larger_than_one_read(tmp_path):
    path = tmp_path / "diskstats"
    text = "".join(f"   8 {i:6d} sd{i} 1 2 3 4 5 6 7 8 9 10 11\n" for i in range(4000))
    path.write_text(text)
    assert len(text) > 2 * 65536
    kept = KeptFile(str(path))
    assert kept.read().decode() == text and kept.read().decode() == text
    kept.close()


def test_a_kept_file_reads_procfs_anew_each_time():
    """/proc/self/schedstat through one descriptor: the kernel writes it for each read (the time on
    the CPU moves on, the descriptor stays)."""
    kept = KeptFile("/proc/self/schedstat")
    first = int(kept.read().split()[0])
    deadline = time.thread_time() + 0.05
    while time.thread_time() < deadline:
        pass
    assert int(kept.read().split()[0]) > first
    kept.close()


def test_a_kept_kernel_table_is_read_with_one_call_a_file_still_checked(tmp_path, monkeypatch):
    """A table the kernel writes cannot be unlinked: after the first read, each read is one pread.
    A file (a fixture's) is still checked for being replaced, at every read."""
    import os
    (tmp_path / "loadavg").write_text("0.10 0.20 0.30 1/100 42\n")
    proc, plain = KeptFile("/proc/self/stat"), KeptFile(str(tmp_path / "loadavg"))
    proc.read(), plain.read()
    calls = []
    for name in ("fstat", "stat", "open", "pread"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    assert proc.read().startswith(str(os.getpid()).encode()) and calls == ["pread"]
    calls.clear()
    assert plain.read() == b"0.10 0.20 0.30 1/100 42\n" and calls == ["fstat", "pread"]
    proc.close(), plain.close()


def test_closing_the_collectors_closes_their_kept_descriptors(tmp_path):
    """A reload closes the collectors it replaces: no descriptor may outlive them."""
    from ishowd.collectors.procfs import ProcfsCollector
    cfg = catalog.loads_config("")
    made = [HostCollector(cfg), ProcfsCollector(cfg)]
    for c in made:
        assert c.setup() is None
        list(c.collect(TickContext(now=time.time(), config=cfg)))
    kept = [v for c in made for v in vars(c).values() if isinstance(v, KeptFile)]
    fds = [k._fd for k in kept]
    assert len(kept) == 5 and all(fd is not None for fd in fds)     # uptime, under /proc, is a clock
    for c in made:
        c.close()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)
