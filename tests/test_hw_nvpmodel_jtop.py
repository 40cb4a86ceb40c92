"""nvpmodel (a subprocess, run rarely) and jetson-stats (optional, only with jtop.service)."""
from __future__ import annotations

import sys
import types

import pytest

from ishowd import catalog
from ishowd.collectors import nvpmodel as nvp_mod
from hw_helpers import board_config, board_root, make, readings, tick


# --- nvpmodel -------------------------------------------------------------------------------

@pytest.mark.parametrize("text,want", [
    ("NV Power Mode: MAXN\n0\n", ("MAXN", 0)),
    ("NV Power Mode: 30W\n2\n", ("30W", 2)),
    ("NVPM WARN: patching tpc_pg_mask\nNV Power Mode: MODE_15W\n\n1\n", ("MODE_15W", 1)),
    ("NV Power Mode: MAXN\n", None),
    ("NV Power Mode: MAXN\nnot a number\n", None),
    ("nvpmodel: command failed\n", None),
    ("", None),
])
def test_parse_query(text, want):
    assert nvp_mod.parse_query(text) == want


def script(tmp_path, body: str):
    p = tmp_path / "nvpmodel"
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(0o755)
    return p


def cfg_with(tmp_path, path, extra=""):
    (tmp_path / "sys").mkdir(exist_ok=True)
    (tmp_path / "proc").mkdir(exist_ok=True)
    return catalog.loads_config(f'[host]\nsysfs_root = "{tmp_path}/sys"\nprocfs_root = "{tmp_path}/proc"\n'
                            f'[gpu]\nnvpmodel_path = "{path}"\n{extra}', "<test>")


def test_runs_at_setup_then_only_after_the_interval(tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    nvp = script(tmp_path, f'echo "$@" >> {calls}\nprintf "NV Power Mode: MAXN\\n0\\n"\n')
    cfg = cfg_with(tmp_path, nvp, 'nvpmodel_interval = "10m"')
    clock = [1000.0]
    monkeypatch.setattr(nvp_mod.time, "monotonic", lambda: clock[0])
    c = make("nvpmodel", cfg)
    assert c.setup() is None
    assert c.mode == ("MAXN", 0)
    for _ in range(5):
        clock[0] += 60
        assert readings(c.collect(tick(cfg))) == {("power_mode_id", (("mode", "MAXN"),)): 0.0}
    assert c.runs == 1
    clock[0] += 600
    list(c.collect(tick(cfg)))
    assert c.runs == 2
    assert calls.read_text() == "-q\n-q\n"    # argv, no shell: exactly one argument


def test_mode_change_is_seen_at_the_next_run(tmp_path, monkeypatch):
    state = tmp_path / "mode"
    state.write_text("NV Power Mode: MAXN\n0\n")
    nvp = script(tmp_path, f"cat {state}\n")
    cfg = cfg_with(tmp_path, nvp)
    clock = [0.0]
    monkeypatch.setattr(nvp_mod.time, "monotonic", lambda: clock[0])
    c = make("nvpmodel", cfg)
    assert c.setup() is None
    state.write_text("NV Power Mode: 15W\n1\n")
    assert readings(c.collect(tick(cfg))) == {("power_mode_id", (("mode", "MAXN"),)): 0.0}   # cached
    clock[0] += 3600
    assert readings(c.collect(tick(cfg))) == {("power_mode_id", (("mode", "15W"),)): 1.0}


def test_failing_or_hanging_command_gives_no_sample(tmp_path):
    nvp = script(tmp_path, "exec sleep 30\n")
    cfg = cfg_with(tmp_path, nvp, 'nvpmodel_timeout = "200ms"')
    c = make("nvpmodel", cfg)
    assert c.setup() is None          # the command exists; it just did not answer this time
    assert c.mode is None
    assert list(c.collect(tick(cfg))) == []

    bad = script(tmp_path, "echo 'NVPM ERROR: failed to read' >&2\nexit 1\n")
    c = make("nvpmodel", cfg_with(tmp_path, bad))
    assert c.setup() is None and c.mode is None


def test_missing_command_skips_quietly(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(nvp_mod, "SEARCH_DIRS", ())
    c = make("nvpmodel", cfg_with(tmp_path, ""))
    assert c.setup() == "no nvpmodel command"
    c = make("nvpmodel", cfg_with(tmp_path, tmp_path / "nope"))
    assert c.setup() == "no nvpmodel command"


def test_found_on_path(tmp_path, monkeypatch):
    script(tmp_path, 'printf "NV Power Mode: MAXN\\n0\\n"\n')
    monkeypatch.setenv("PATH", str(tmp_path))
    c = make("nvpmodel", cfg_with(tmp_path, ""))
    assert c.setup() is None and c.mode == ("MAXN", 0)


# --- jtop -----------------------------------------------------------------------------------

class FakeJetsonClocks:
    def __init__(self, alive):
        self.alive = alive

    def __bool__(self):
        return self.alive


def fake_jtop(*, memory=None, jc=True, start_error=None):
    m = types.ModuleType("jtop")

    class jtop:
        def __init__(self, interval=1.0):
            self.memory = memory if memory is not None else {
                "EMC": {"cur": 3199000, "max": 3199000, "min": 204000, "val": 23, "online": True}}
            self.jetson_clocks = None if jc is None else FakeJetsonClocks(jc)
            self.closed = False

        def start(self):
            if start_error:
                raise start_error

        def close(self):
            self.closed = True
    m.jtop = jtop
    return m


@pytest.fixture
def sock(tmp_path):
    p = tmp_path / "jtop.sock"
    p.write_text("")       # only its existence is checked before the client is started
    return p


def jtop_cfg(tmp_path, sock, mode="auto"):
    (tmp_path / "sys").mkdir(exist_ok=True)
    (tmp_path / "proc").mkdir(exist_ok=True)
    return catalog.loads_config(f'[host]\nsysfs_root = "{tmp_path}/sys"\nprocfs_root = "{tmp_path}/proc"\n'
                            f'[gpu]\njtop = "{mode}"\njtop_socket = "{sock}"\n', "<test>")


def test_jtop_reads_emc_and_jetson_clocks(tmp_path, sock, monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", fake_jtop())
    cfg = jtop_cfg(tmp_path, sock)
    c = make("jtop", cfg)
    assert c.setup() is None
    assert readings(c.collect(tick(cfg))) == {
        ("emc_frequency_hz", ()): 3_199_000_000.0, ("emc_frequency_max_hz", ()): 3_199_000_000.0,
        ("emc_utilization_percent", ()): 23.0, ("jetson_clocks_active", ()): 1.0}
    c.close()


def test_jtop_without_emc_or_jetson_clocks(tmp_path, sock, monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", fake_jtop(memory={}, jc=False))
    cfg = jtop_cfg(tmp_path, sock)
    c = make("jtop", cfg)
    assert c.setup() is None
    assert readings(c.collect(tick(cfg))) == {("jetson_clocks_active", ()): 0.0}


def test_jtop_needs_the_service_socket(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", fake_jtop())
    c = make("jtop", jtop_cfg(tmp_path, tmp_path / "absent.sock"))
    assert c.setup().startswith("jtop.service is not running")


def test_jtop_not_installed(tmp_path, sock, monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", None)
    reason = make("jtop", jtop_cfg(tmp_path, sock)).setup()
    assert "jetson-stats is not installed" in reason and "AGPL-3.0" in reason


def test_jtop_service_inactive(tmp_path, sock, monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", fake_jtop(start_error=RuntimeError("The jtop.service is not active")))
    reason = make("jtop", jtop_cfg(tmp_path, sock)).setup()
    assert reason == "jtop.service is not reachable (The jtop.service is not active)"


def test_jtop_off(tmp_path, sock, monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", fake_jtop())
    assert "disabled" in make("jtop", jtop_cfg(tmp_path, sock, "off")).setup()


def test_everything_works_without_jtop():
    """The Jetson sysfs collectors never need jetson-stats: the board tests run with none installed."""
    import importlib.util
    assert importlib.util.find_spec("jtop") is None
    cfg = board_config(board_root("orin-jp6-locked"))
    assert make("jetson_gpu", cfg).setup() is None
