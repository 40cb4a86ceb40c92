"""Desktop and server NVIDIA GPUs through NVML (``pip install 'ishowd[nvml]'``, module ``pynvml``).

Per GPU, each tick:

=============================== =====================================================
metric                          NVML call
=============================== =====================================================
``gpu_utilization_percent``     ``nvmlDeviceGetUtilizationRates(h).gpu``
``gpu_memory_used_bytes``       ``nvmlDeviceGetMemoryInfo(h, version=nvmlMemory_v2).used``
``gpu_memory_total_bytes``      ``nvmlDeviceGetMemoryInfo(h, version=nvmlMemory_v2).total``
``gpu_memory_reserved_bytes``   ``nvmlDeviceGetMemoryInfo(h, version=nvmlMemory_v2).reserved``
``gpu_temperature_celsius``     ``nvmlDeviceGetTemperatureV(h, NVML_TEMPERATURE_GPU)``
                                (``nvmlDeviceGetTemperature`` on drivers without it)
``gpu_frequency_hz``            ``nvmlDeviceGetClockInfo(h, NVML_CLOCK_GRAPHICS)`` × 10⁶
``gpu_frequency_max_hz``        ``nvmlDeviceGetMaxClockInfo(h, NVML_CLOCK_GRAPHICS)`` × 10⁶
``gpu_frequency_locked``        see below
``power_watts{rail=<gpu>}``     ``nvmlDeviceGetPowerUsage(h)`` / 1000 (board power)
``fan_speed_percent{fan=<gpu>}`` ``nvmlDeviceGetFanSpeed(h)``
``gpu_clock_event_reason``      ``nvmlDeviceGetCurrentClocksEventReasons(h)``, one 0/1
                                series per reason bit
=============================== =====================================================

Memory is read through the v2 call, as nvidia-smi does: its ``used`` leaves out
the memory the driver reserves for itself (``reserved``), so
``gpu_memory_used_bytes`` equals nvidia-smi's ``memory.used``. The v1 call
counts the reservation as used (615 MiB on an idle H200 that nvidia-smi shows
at 0 MiB, see docs/hardware.md); it is used only on drivers without v2, and
then there is no reserved figure.

``gpu`` (and ``rail``, ``fan``) is the GPU's UUID as nvidia-smi prints it
(``GPU-…``): NVML's index order is not promised to survive a reboot, the UUID is.

**gpu_frequency_locked from NVML.** NVML has no getter that reads back a
locked clock range (``nvidia-smi -lgc``) or says whether one is set, so the
lock cannot be read as a setting. What NVML does report is the current
graphics clock and the maximum graphics clock; the metric is defined from
those alone: 1 when the graphics clock read this tick equals the maximum
graphics clock read this tick, else 0 (absent when either cannot be read).
It answers "is the GPU running at its maximum clock right now": an idle GPU
that is not locked reads 0, a GPU locked at maximum reads 1 even when idle, a
busy GPU boosting to its maximum also reads 1, and one held below its
maximum by a power or thermal cap reads 0 (``gpu_clock_event_reason`` says
why).

A field the GPU does not support (``NVMLError_NotSupported``, e.g. the fan of
a passively cooled datacenter GPU) is absent for that GPU from then on; the
other fields are still read. No library or no driver: ``setup()`` says so
once and the collector is skipped. On a Jetson (a devfreq GPU exists) NVML is
not dependable and the sysfs collectors already read the GPU, so with
``[gpu] nvml = "auto"`` this collector steps aside.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Optional

from ..metrics import Sample
from ..specs.fan import FAN_PERCENT
from ..specs.gpu import (CLOCK_EVENT, GPU_FREQ, GPU_FREQ_MAX, GPU_LOCKED, GPU_MEM_TOTAL, GPU_MEM_USED, GPU_TEMP,
                         GPU_UTIL, MEM_RESERVED)
from ..specs.power import POWER
from . import Collector, TickContext, register
from ._gpu import find_jetson_gpus

log = logging.getLogger(__name__)


# nvmlClocksEventReason* bits (nvml.h), as label values.
CLOCK_EVENT_REASONS = (
    (0x001, "gpu_idle"),
    (0x002, "applications_clocks_setting"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal_slowdown"),
    (0x040, "hw_thermal_slowdown"),
    (0x080, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
)

# NVML return codes (nvml.h); compared by value so that any pynvml version works.
NOT_SUPPORTED = 3
FUNCTION_NOT_FOUND = 13
GPU_IS_LOST = 15
ARGUMENT_VERSION_MISMATCH = 25


class _Gpu:
    def __init__(self, handle: Any, label: str):
        self.handle = handle
        self.label = label
        self.unsupported: set[str] = set()


_TOLD: set = set()      # (gpu, field) whose NotSupported was logged


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@register
class NvmlCollector(Collector):
    name = "nvml"
    metrics = (GPU_UTIL, GPU_MEM_USED, GPU_MEM_TOTAL, MEM_RESERVED, GPU_TEMP, GPU_FREQ, GPU_FREQ_MAX, GPU_LOCKED,
               POWER, FAN_PERCENT, CLOCK_EVENT)

    def setup(self) -> Optional[str]:
        self._nv = None
        self._gpus: list[_Gpu] = []
        mode = self.config.sections.get("gpu", {}).get("nvml") or "auto"
        if mode == "off":
            return 'disabled ([gpu] nvml = "off")'
        if mode == "auto" and find_jetson_gpus(self.config):
            return 'Jetson GPU, read from sysfs ([gpu] nvml = "on" tries NVML too)'
        try:
            import pynvml  # lazily: only this collector needs it, and only where it is installed
        except ImportError:
            return "nvidia-ml-py is not installed (pip install 'ishowd[nvml]')"
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...; OSError from ctypes
            return f"no NVIDIA driver ({exc})"
        self._nv = pynvml
        self._temp_v = hasattr(pynvml, "nvmlDeviceGetTemperatureV")
        self._events_new = hasattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons")
        self._mem_v2 = getattr(pynvml, "nvmlMemory_v2", None)
        try:
            for i in range(pynvml.nvmlDeviceGetCount()):
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                self._gpus.append(_Gpu(h, _text(pynvml.nvmlDeviceGetUUID(h))))
        except pynvml.NVMLError as exc:
            self.close()
            return f"NVML cannot list GPUs ({exc})"
        if not self._gpus:
            self.close()
            return "no NVIDIA GPU"
        try:
            self.driver = _text(pynvml.nvmlSystemGetDriverVersion())
        except pynvml.NVMLError:
            self.driver = ""
        return None

    def close(self) -> None:
        if getattr(self, "_nv", None) is not None:
            try:
                self._nv.nvmlShutdown()
            except Exception:  # pragma: no cover - shutting down anyway
                pass
            self._nv = None

    # --- reading one field --------------------------------------------------

    def _get(self, gpu: _Gpu, field: str, fn: Callable[[], Any]) -> Any:
        """The field's value, or None; a NotSupported field is never asked again for this GPU."""
        if field in gpu.unsupported:
            return None
        try:
            return fn()
        except self._nv.NVMLError as exc:
            code = getattr(exc, "value", None)
            if code in (NOT_SUPPORTED, FUNCTION_NOT_FOUND):
                gpu.unsupported.add(field)
                if (gpu.label, field) not in _TOLD:     # once per process: the audit reads the GPU anew
                    _TOLD.add((gpu.label, field))
                    log.info("NVML: %s is not supported on %s; it stays absent", field, gpu.label)
            elif code == GPU_IS_LOST:
                log.warning("NVML: %s is lost", gpu.label)
            return None

    def _temperature(self, h: Any) -> int:
        nv = self._nv
        if self._temp_v:
            try:
                return nv.nvmlDeviceGetTemperatureV(h, nv.NVML_TEMPERATURE_GPU)
            except nv.NVMLError as exc:
                if getattr(exc, "value", None) not in (FUNCTION_NOT_FOUND, ARGUMENT_VERSION_MISMATCH):
                    raise
                self._temp_v = False
        return nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)

    def _memory(self, h: Any) -> Any:
        nv = self._nv
        if self._mem_v2:
            try:
                return nv.nvmlDeviceGetMemoryInfo(h, version=self._mem_v2)
            except nv.NVMLError as exc:
                if getattr(exc, "value", None) not in (FUNCTION_NOT_FOUND, ARGUMENT_VERSION_MISMATCH, NOT_SUPPORTED):
                    raise
                self._mem_v2 = None
        return nv.nvmlDeviceGetMemoryInfo(h)

    def _event_reasons(self, h: Any) -> int:
        nv = self._nv
        if self._events_new:
            try:
                return nv.nvmlDeviceGetCurrentClocksEventReasons(h)
            except nv.NVMLError as exc:
                if getattr(exc, "value", None) != FUNCTION_NOT_FOUND:
                    raise
                self._events_new = False
        return nv.nvmlDeviceGetCurrentClocksThrottleReasons(h)

    def collect(self, ctx: TickContext) -> Iterable[Sample]:
        nv = self._nv
        out: list[Sample] = []
        for g in self._gpus:
            h, labels = g.handle, {"gpu": g.label}
            util = self._get(g, "utilization", lambda: nv.nvmlDeviceGetUtilizationRates(h))
            if util is not None:
                out.append(Sample(GPU_UTIL, float(util.gpu), labels))
            mem = self._get(g, "memory", lambda: self._memory(h))
            if mem is not None:
                out.append(Sample(GPU_MEM_USED, float(mem.used), labels))
                out.append(Sample(GPU_MEM_TOTAL, float(mem.total), labels))
                reserved = getattr(mem, "reserved", None)
                if reserved is not None:
                    out.append(Sample(MEM_RESERVED, float(reserved), labels))
            temp = self._get(g, "temperature", lambda: self._temperature(h))
            if temp is not None:
                out.append(Sample(GPU_TEMP, float(temp), labels))
            clock = self._get(g, "clock", lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_GRAPHICS))
            if clock is not None:
                out.append(Sample(GPU_FREQ, clock * 1e6, labels))
            top = self._get(g, "max_clock", lambda: nv.nvmlDeviceGetMaxClockInfo(h, nv.NVML_CLOCK_GRAPHICS))
            if top is not None:
                out.append(Sample(GPU_FREQ_MAX, top * 1e6, labels))
            if clock is not None and top:
                out.append(Sample(GPU_LOCKED, 1.0 if clock == top else 0.0, labels))
            power = self._get(g, "power", lambda: nv.nvmlDeviceGetPowerUsage(h))
            if power is not None:
                out.append(Sample(POWER, power / 1000.0, {"rail": g.label}))
            fan = self._get(g, "fan", lambda: nv.nvmlDeviceGetFanSpeed(h))
            if fan is not None:
                out.append(Sample(FAN_PERCENT, float(fan), {"fan": g.label}))
            reasons = self._get(g, "clock_event_reasons", lambda: self._event_reasons(h))
            if reasons is not None:
                for bit, reason in CLOCK_EVENT_REASONS:
                    out.append(Sample(CLOCK_EVENT, 1.0 if reasons & bit else 0.0,
                                      {"gpu": g.label, "reason": reason}))
        return out
