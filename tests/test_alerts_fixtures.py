"""The default GPU rules on a Jetson fixture tree, through the daemon's own tick.

A copy of the AGX Orin JetPack 6 tree (clock not locked) stands in for the
hardware: the test writes the GPU zone's temperature and, later, what
`sudo jetson_clocks` writes to devfreq, and the real collectors read them.
Time is the tick's argument (no sleeping): ten seconds a tick.
"""
from __future__ import annotations

import json
import shutil

import pytest

from alerts_helpers import db, write_hook
from hw_helpers import board_root, toml_text
from ishowd import catalog
from ishowd.daemon import Daemon

T0 = 1_790_000_000
RECORD = """
import json, sys
with open(sys.argv[1], "a") as f:
    a = json.load(sys.stdin)
    f.write(json.dumps([a["rule"], a["state"], a["labels"], a["value"]]) + "\\n")
"""


@pytest.mark.filterwarnings("ignore:'sin' and 'sout' swap memory stats")   # the tree has no /proc/vmstat
def test_gpu_rules_fire_and_resolve_on_the_orin_tree(tmp_path):
    root = tmp_path / "orin"
    shutil.copytree(board_root("orin-jp6-unlocked"), root, symlinks=True)
    zone = root / "sys" / "class" / "thermal" / "thermal_zone1"
    assert (zone / "type").read_text().strip() == "gpu-thermal"
    devfreq = (root / "sys" / "class" / "devfreq" / "17000000.gpu").resolve()
    hook_log = tmp_path / "hooks.log"
    hook = write_hook(tmp_path, "record.py", RECORD)
    text = toml_text(root) + (f'[storage]\npath = "{tmp_path / "ishowd.db"}"\n[exporter]\nlisten = ""\n'
                              f'[[alerts.hooks]]\ncommand = ["{hook}", "{hook_log}"]\n'
                              'rules = ["gpu-hot", "gpu-warm", "gpu-unlocked"]\n')
    path = tmp_path / "ishowd.toml"
    path.write_text(text)
    daemon = Daemon(catalog.load_config(str(path)))    # the built-in rules: the file has none
    assert "alerts" in [t.name for t in daemon.tasks]
    try:
        for i in range(0, 61):
            t = i * 10
            temp = 70000 if t < 100 else 85000 if t < 250 else 60000
            (zone / "temp").write_text(f"{temp}\n")
            if t == 500:                             # sudo jetson_clocks: floor raised to the maximum
                (devfreq / "min_freq").write_text("1300500000\n")
                (devfreq / "cur_freq").write_text("1300500000\n")
            daemon.tick(T0 + t)
    finally:
        daemon.close()
    with db(daemon.config) as conn:
        events = [(r[0], r[1], int(r[2] / 1e6) - T0) for r in conn.execute(
            "SELECT rule, state, ts FROM alert_events WHERE rule LIKE 'gpu-%' ORDER BY id")]
    assert events == [
        ("gpu-hot", "firing", 160), ("gpu-warm", "firing", 160),        # above 80 °C from 100 s, for 1 min
        ("gpu-hot", "resolved", 250), ("gpu-warm", "resolved", 250),
        ("gpu-unlocked", "firing", 300),                                 # not locked from the start, for 5 min
        ("gpu-unlocked", "resolved", 500),
    ]
    runs = [json.loads(line) for line in hook_log.read_text().splitlines()]
    # two hook workers: runs of simultaneous alerts may finish in either order
    assert sorted(r[:2] for r in runs) == sorted([e[0], e[1]] for e in events)
    assert {r[1]: r[3] for r in runs if r[0] == "gpu-hot"} == {"firing": 85.0, "resolved": 60.0}
    assert all(r[2] == {"gpu": "17000000.gpu"} for r in runs)


@pytest.mark.filterwarnings("ignore:'sin' and 'sout' swap memory stats")
def test_on_the_plain_x86_tree_the_gpu_rules_stay_quiet(tmp_path, caplog):
    import logging
    root = board_root("x86-plain")
    path = tmp_path / "ishowd.toml"
    path.write_text(toml_text(root) + f'[storage]\npath = "{tmp_path / "ishowd.db"}"\n[exporter]\nlisten = ""\n')
    caplog.set_level(logging.INFO, logger="ishowd.alerts")
    daemon = Daemon(catalog.load_config(str(path)))
    try:
        for i in range(40):
            daemon.tick(T0 + i * 10)
    finally:
        daemon.close()
    quiet = [r.getMessage() for r in caplog.records if "no series on this host" in r.getMessage()]
    assert len(quiet) == 1 and "gpu-hot (gpu_temperature_celsius)" in quiet[0]
    with db(daemon.config) as conn:
        assert conn.execute("SELECT count(*) FROM alert_events WHERE rule LIKE 'gpu-%'").fetchone()[0] == 0
