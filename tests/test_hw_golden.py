"""End to end, per fixture board: the installed `ishowd run --once` with sysfs_root/procfs_root at the
tree, then the installed `ishowctl status --json`, compared with tests/golden/<board>.json.

Volatile fields are normalised away: timestamps, the collectors' durations, and every reading
that is not hardware (the host collector reads the real machine's CPU; backend and RTF belong to
other parts). `pytest --regen-golden` rewrites the golden files on purpose; review the diff.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import entry_point, run, write_config
from ishowd.catalog import registry
from ishowd.specs import procfs
from hw_helpers import BOARDS, HARDWARE, HOST_SOURCES, board_root

GOLDEN = Path(__file__).resolve().parent / "golden"
HARDWARE_GROUPS = {"gpu", "thermal", "power", "fan", "clocks"}
# The host group is mostly psutil reading the real machine; these host metrics come from the tree.
FROM_THE_TREE = {m.name for m in procfs.METRICS}


def normalise(status: dict) -> dict:
    REGISTRY = registry()
    metrics = []
    for m in status["metrics"]:
        meta = REGISTRY.get(m["name"])
        if m["name"] == "ishowd_collector_success" and m["labels"].get("collector") in HARDWARE + HOST_SOURCES:
            pass
        elif m["name"] in FROM_THE_TREE:
            pass
        elif meta is None or meta.group not in HARDWARE_GROUPS:
            continue
        metrics.append({k: m[k] for k in ("name", "labels", "value", "unit")})
    metrics.sort(key=lambda m: (m["name"], json.dumps(m["labels"], sort_keys=True)))
    return {"metrics": metrics, "gpu_lock": status.get("gpu_lock"), "power_mode": status.get("power_mode")}


@pytest.mark.parametrize("board", BOARDS)
def test_golden_status(board, tmp_path, regen_golden):
    root = board_root(board)
    nvp = root / "bin" / "nvpmodel"
    cfg = write_config(tmp_path, host={"sysfs_root": str(root / "sys"), "procfs_root": str(root / "proc")},
                       gpu={"nvpmodel_path": str(nvp) if nvp.exists() else str(tmp_path / "no-nvpmodel"),
                            "nvml": "off", "jtop_socket": str(tmp_path / "no-jtop.sock")})
    once = run(entry_point("ishowd"), "run", "--config", str(cfg), "--once")
    assert once.returncode == 0, once.stderr
    out = run(entry_point("ishowctl"), "--config", str(cfg), "status", "--json")
    assert out.returncode == 0, out.stderr
    got = normalise(json.loads(out.stdout))
    path = GOLDEN / f"{board}.json"
    if regen_golden:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
        return
    assert path.exists(), f"{path} is missing: run pytest --regen-golden and review it"
    want = json.loads(path.read_text())
    assert got == want


@pytest.mark.parametrize("board", BOARDS)
def test_golden_files_hold_the_hand_computed_values(board):
    """A guard against regenerating goldens from a broken run: through the daemon and the store,
    each board must still show exactly the values worked out by hand in test_hw_boards and test_hw_host."""
    from test_hw_boards import EXPECTED
    from test_hw_host import EXPECTED_HOST

    from ishowd.units import DECIMALS
    data = json.loads((GOLDEN / f"{board}.json").read_text())
    got = {(m["name"], tuple(sorted(m["labels"].items()))): m["value"]
           for m in data["metrics"] if m["name"] != "ishowd_collector_success"}
    want = {**EXPECTED[board], **EXPECTED_HOST[board]}
    assert sorted(got) == sorted(want)
    units = {m["name"]: m["unit"] for m in data["metrics"]}
    for key, value in want.items():
        # status rounds a reading to what its unit resolves: half its last decimal place at most
        assert abs(got[key] - value) <= 0.5 * 10 ** -DECIMALS[units[key[0]]] + 1e-12, key
    assert all(m["value"] == 1.0 for m in data["metrics"] if m["name"] == "ishowd_collector_success")


def test_golden_files_show_the_gpu_lock():
    for board in BOARDS:
        data = json.loads((GOLDEN / f"{board}.json").read_text())
        names = {m["name"] for m in data["metrics"]}
        assert "temperature_celsius" in names, board
        if board == "x86-plain":
            assert not {n for n in names if n.startswith("gpu_")} and data["gpu_lock"] == []
        else:
            assert "gpu_frequency_hz" in names and len(data["gpu_lock"]) == 1, board
