"""``ishowctl status``: the GPU clock lock and the power mode, shown first.

A lost GPU lock is the most common cause of slow synthesis (mean RTF 0.352
±16 % unlocked against 0.278 ±1.5 % locked), so it leads the status, with
the command that fixes it. JSON: ``"gpu_lock"`` (one object per GPU) and
``"power_mode"`` (``{"name", "id"}`` or null where nvpmodel does not exist).
"""
from __future__ import annotations

from .status_view import StatusView

_FREQS = ("gpu_frequency_hz", "gpu_frequency_max_hz", "gpu_frequency_cap_hz", "gpu_frequency_floor_hz",
          "gpu_frequency_locked")


def _ghz(hz: float) -> str:
    return f"{hz / 1e9:.2f}"


def _freq(hz: float) -> str:
    return f"{hz / 1e9:.2f} GHz" if hz >= 1e9 else f"{hz / 1e6:.0f} MHz"


def lock_line(g: dict, name: str) -> tuple[str, str | None]:
    """(the line, the hint or None) for one GPU's readings ``g`` (metric name -> value)."""
    cur, top = g.get("gpu_frequency_hz"), g.get("gpu_frequency_max_hz")
    cap, floor, locked = g.get("gpu_frequency_cap_hz"), g.get("gpu_frequency_floor_hz"), g.get("gpu_frequency_locked")
    jetson = cap is not None or floor is not None
    if locked is None:
        shown = f" ({_freq(cur)})" if cur is not None else ""
        return f"{name}: lock unknown{shown}", None
    if locked:
        if jetson:
            return f"{name}: LOCKED at {_freq(top)}", None
        return f"{name}: at maximum, {_freq(cur if cur is not None else top)} (NVML)", None
    if not jetson:
        now = f"{_ghz(cur)} of {_ghz(top)} GHz" if cur is not None and top else "?"
        hint = "NVML cannot read a lock setting; `sudo nvidia-smi -lgc <max MHz>` holds the clock"
        return f"{name}: below maximum ({now})", hint
    capped = cap is not None and top is not None and cap < top
    if capped and floor == cap:
        hint = "run `sudo nvpmodel -m 0` (MAXN), then `sudo jetson_clocks`"
        return (f"{name}: NOT LOCKED at maximum: pinned at {_freq(cap)}, the power mode's cap "
                f"(maximum {_freq(top)})"), hint
    now = f"{_ghz(cur)} of {_ghz(top)} GHz" if cur is not None and top else "?"
    if capped:
        return (f"{name}: NOT LOCKED ({now}, the power mode caps it at {_freq(cap)})",
                "run `sudo nvpmodel -m 0` (MAXN), then `sudo jetson_clocks`")
    return f"{name}: NOT LOCKED ({now})", "run `sudo jetson_clocks`"


def gpu_lock(view: StatusView) -> None:
    gpus: dict[str, dict] = {}
    mode_row = None
    for row in view.latest:
        if row.name in _FREQS and "gpu" in row.labels:
            gpus.setdefault(row.labels["gpu"], {})[row.name] = row.value
        elif row.name == "power_mode_id" and (mode_row is None or row.ts > mode_row.ts):
            mode_row = row
    out = []
    for label in sorted(gpus):
        g = gpus[label]
        name = "GPU clock" if len(gpus) == 1 else f"GPU {label} clock"
        line, hint = lock_line(g, name)
        view.top.append(line + (f" — {hint}" if hint else ""))
        locked = g.get("gpu_frequency_locked")
        out.append({"gpu": label, "locked": None if locked is None else bool(locked),
                    "frequency_hz": g.get("gpu_frequency_hz"), "max_hz": g.get("gpu_frequency_max_hz"),
                    "cap_hz": g.get("gpu_frequency_cap_hz"), "floor_hz": g.get("gpu_frequency_floor_hz"),
                    "hint": hint})
    view.data["gpu_lock"] = out
    if mode_row is not None:
        name = mode_row.labels.get("mode", "?")
        view.data["power_mode"] = {"name": name, "id": int(mode_row.value)}
        view.top.append(f"Power mode: {name} (nvpmodel {int(mode_row.value)})")
    else:
        view.data["power_mode"] = None
