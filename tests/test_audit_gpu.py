"""The GPU as the audit and the benchmark read it now: fixture boards, an NVML stand-in, the torch probe."""
from __future__ import annotations

import shutil
import sys

from hw_helpers import board_config, board_root
from test_hw_nvml import fake_pynvml, gpu, with_nvml

from ishowd.audit import gpu as audit_gpu
from ishowd.catalog import collectors


def read_gpu(cfg):
    return audit_gpu.read_gpu(cfg, collectors())


def free_memory(cfg, probe=None, reading=None):
    return audit_gpu.free_memory(cfg, reading or read_gpu(cfg), probe=probe)


def test_a_locked_orin_reads_locked_and_its_free_memory_is_memavailable():
    cfg = board_config(board_root("orin-jp6-locked"))
    r = read_gpu(cfg)
    assert (r.kind, r.problem) == ("jetson", None)
    assert r.locked == {"17000000.gpu": True}
    assert r.clocks["17000000.gpu"] == (1_300_500_000.0, 1_300_500_000.0)
    meminfo = (board_root("orin-jp6-locked") / "proc" / "meminfo").read_text()
    kb = int(next(line.split()[1] for line in meminfo.splitlines() if line.startswith("MemAvailable:")))
    nvmap = int(next(line.split()[1] for line in meminfo.splitlines() if line.startswith("NvMapMemUsed:")))
    assert r.used_bytes == nvmap * 1024
    assert free_memory(cfg, reading=r) == (kb * 1024, "MemAvailable (the Jetson GPU shares the RAM)")


def test_an_unlocked_orin_reads_unlocked_with_its_clocks():
    r = read_gpu(board_config(board_root("orin-jp6-unlocked")))
    assert r.locked == {"17000000.gpu": False}
    cur, top = r.clocks["17000000.gpu"]
    assert cur < top


def test_a_jetson_without_memavailable_cannot_say_what_is_free(tmp_path):
    root = tmp_path / "board"
    shutil.copytree(board_root("orin-jp6-locked"), root, symlinks=True)
    meminfo = root / "proc" / "meminfo"
    meminfo.write_text("".join(line + "\n" for line in meminfo.read_text().splitlines()
                               if not line.startswith("MemAvailable:")))
    free, how = free_memory(board_config(root))
    assert free is None and "MemAvailable" in how


def test_a_plain_machine_has_no_gpu_and_says_why():
    cfg = board_config(board_root("x86-plain"))
    r = read_gpu(cfg)
    assert r.kind == "none" and r.locked == {} and r.used_bytes is None
    assert r.problem.startswith("no GPU found (jetson_gpu: no devfreq GPU")
    assert free_memory(cfg) == (None, r.problem)


def test_without_jetson_or_nvml_the_services_torch_is_asked():
    cfg = board_config(board_root("x86-plain"))
    asked = []

    def probe():
        asked.append(1)
        return {"cuda_available": True, "memory_free": 7_000_000_000, "memory_total": 8_000_000_000}
    assert free_memory(cfg, probe=probe) == (7_000_000_000, "torch.cuda.mem_get_info in the service's interpreter")
    assert asked == [1]
    free, how = free_memory(cfg, probe=lambda: {"cuda_available": False, "memory_free": None})
    assert free is None and how.endswith("the service's torch sees no CUDA device")

    def broken():
        raise RuntimeError("timed out after 120 s")
    free, how = free_memory(cfg, probe=broken)
    assert free is None and how.endswith("the service's torch could not be asked: timed out after 120 s")


def test_a_jetson_never_starts_the_probe():
    def probe():  # pragma: no cover - must not be called
        raise AssertionError("the probe ran on a Jetson")
    free, _ = free_memory(board_config(board_root("orin-jp6-locked")), probe=probe)
    assert free > 0


def test_nvml_free_is_the_least_free_gpu_less_the_drivers_reservation(monkeypatch, tmp_path):
    (tmp_path / "sys").mkdir()
    (tmp_path / "proc").mkdir()
    cfg = with_nvml(board_config(tmp_path), "on")
    big = gpu(used=10_000_000_000, reserved=500_000_000, total=80_000_000_000, clock=1400, max_clock=1980)
    small = gpu(uuid="GPU-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff", used=70_000_000_000, reserved=500_000_000,
                total=80_000_000_000)
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([big, small]))
    r = read_gpu(cfg)
    assert r.kind == "nvml"
    assert sorted(r.locked.values()) == [False, True]
    assert r.used_bytes == 80_000_000_000
    assert free_memory(cfg, reading=r) == (9_500_000_000, "NVML")
