"""The GPU as it is now, for the audit and the benchmark's refusal: its clock lock and free memory.

Read through the daemon's own GPU collectors, once, under the configured
roots (``[host] sysfs_root`` / ``procfs_root``), so a check sees exactly what
``ishowctl status`` would: a Jetson's devfreq GPU (``jetson_gpu``, and
``gpu_memory`` for the shared memory in use), else NVML (``nvml``). Nothing
read means no GPU here, and says why.

Free memory, as the benchmark's 5 GB rule means it:

- Jetson: ``MemAvailable`` from ``meminfo``; the GPU shares the RAM, so what the
  kernel could hand out is what a synthesis could get (``NvMapMemUsed`` is
  what the GPU holds, not what is left);
- NVML: the least free among the GPUs (total − used − reserved);
- else the service's own torch (``torch.cuda.mem_get_info`` in its
  interpreter, through the probe the caller hands in).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

# The collectors whose samples say what a GPU is doing, in the order tried.
GPU_COLLECTORS = ("jetson_gpu", "gpu_memory", "nvml")


class GpuReading(NamedTuple):
    kind: str                     # "jetson", "nvml" or "none"
    locked: dict                  # gpu label -> bool (gpu_frequency_locked); {} when unknown
    clocks: dict                  # gpu label -> (current hz, max hz)
    used_bytes: Optional[int]     # GPU memory in use, summed over the GPUs; None when unknown
    problem: Optional[str]        # why nothing could be read
    free_bytes: Optional[int] = None   # NVML: the least free among the GPUs


def _collect(config, classes: dict) -> tuple[dict, dict]:
    """Run each GPU collector once: (its samples by collector, why each other one is absent)."""
    import time

    from ..collectors import TickContext

    got: dict = {}
    absent: dict = {}
    ctx = TickContext(now=time.time(), config=config)
    for name in GPU_COLLECTORS:
        collector = classes[name](config)
        try:
            why = collector.setup()
            if why:
                absent[name] = why
                continue
            got[name] = list(collector.collect(ctx))
        except Exception as exc:      # a sensor that breaks is that source lost, never the check's crash
            absent[name] = f"failed: {exc}"
        finally:
            close = getattr(collector, "close", None)
            if close is not None:
                close()
    return got, absent


def read_gpu(config, classes: dict) -> GpuReading:
    """The GPU now, through ``classes`` (the collector classes by name, as ``catalog.collectors()``
    hands them down: a job gets them as ``ctx.collectors()``). Never raises."""
    try:
        got, absent = _collect(config, classes)
    except Exception as exc:  # pragma: no cover - the catalog itself failing
        return GpuReading("none", {}, {}, None, f"the GPU could not be read: {exc}")
    kind = "jetson" if "jetson_gpu" in got else "nvml" if "nvml" in got else "none"
    if kind == "none":
        why = "; ".join(f"{name}: {absent[name]}" for name in ("jetson_gpu", "nvml") if name in absent)
        return GpuReading("none", {}, {}, None, f"no GPU found ({why})")
    samples = [s for name in GPU_COLLECTORS for s in got.get(name, ())]
    by: dict = {}
    for s in samples:
        by.setdefault(s.metric.name, {})[s.labels.get("gpu")] = s.value
    locked = {gpu: bool(v) for gpu, v in by.get("gpu_frequency_locked", {}).items()}
    cur, top = by.get("gpu_frequency_hz", {}), by.get("gpu_frequency_max_hz", {})
    clocks = {gpu: (cur[gpu], top.get(gpu)) for gpu in cur}
    used = by.get("gpu_memory_used_bytes")
    free = None
    if kind == "nvml" and used:
        total, reserved = by.get("gpu_memory_total_bytes", {}), by.get("gpu_memory_reserved_bytes", {})
        frees = [total[g] - used[g] - reserved.get(g, 0.0) for g in used if g in total]
        free = int(min(frees)) if frees else None
    return GpuReading(kind, locked, clocks, int(sum(used.values())) if used else None, None, free)


def mem_available(config) -> Optional[int]:
    """``MemAvailable`` in bytes from ``<procfs_root>/meminfo``, or None."""
    from ..paths import meminfo_kb, proc_path
    try:
        with open(proc_path(config, "meminfo"), "rb") as f:
            kb = meminfo_kb(f.read(65536).decode("ascii", "replace"), "MemAvailable")
    except OSError:
        return None
    return kb["MemAvailable"] * 1024 if "MemAvailable" in kb else None


def free_memory(config, reading: GpuReading,
                probe: Optional[Callable[[], dict]] = None) -> tuple[Optional[int], str]:
    """(free bytes, how it was read), or (None, why it could not be). Never raises.

    ``reading``: what ``read_gpu`` answered; ``probe``: a zero-argument callable answering as
    ``torch_child.run_probe`` (raising ``ProbeFailed``), asked only where neither a Jetson nor NVML
    shows the GPU.
    """
    if reading.kind == "jetson":
        free = mem_available(config)
        if free is None:
            return None, "no MemAvailable in meminfo (the Jetson GPU shares the RAM: that is its free memory)"
        return free, "MemAvailable (the Jetson GPU shares the RAM)"
    if reading.kind == "nvml":
        if reading.free_bytes is None:
            return None, "NVML did not report the GPU's memory"
        return reading.free_bytes, "NVML"
    if probe is None:
        return None, reading.problem or "no GPU found"
    try:
        answer = probe()
    except Exception as exc:       # ProbeFailed, or anything the child's answer broke
        return None, f"{reading.problem}; the service's torch could not be asked: {exc}"
    free = answer.get("memory_free")
    if not answer.get("cuda_available") or not isinstance(free, int):
        return None, f"{reading.problem}; the service's torch sees no CUDA device"
    return free, "torch.cuda.mem_get_info in the service's interpreter"
