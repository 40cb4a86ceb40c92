"""The committed fixture trees are exactly what tests/fixtures/make_sysfs.py makes, and they keep
the real layouts' symlinks."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hw_helpers import BOARDS, FIXTURES

GENERATOR = FIXTURES.parent / "make_sysfs.py"


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", p.read_bytes(), os.access(p, os.X_OK))
    return out


def test_generator_reproduces_the_committed_trees(tmp_path):
    subprocess.run([sys.executable, str(GENERATOR), str(tmp_path)], check=True)
    assert sorted(os.listdir(tmp_path)) == sorted(BOARDS)
    for board in BOARDS:
        assert snapshot(tmp_path / board) == snapshot(FIXTURES / board), board


def test_trees_use_the_kernels_relative_symlinks():
    root = FIXTURES / "orin-jp6-locked" / "sys"
    assert os.readlink(root / "class/devfreq/17000000.gpu") == \
        "../../devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu"
    assert os.readlink(root / "class/thermal/thermal_zone0") == "../../devices/virtual/thermal/thermal_zone0"
    assert os.readlink(root / "class/hwmon/hwmon3") == "../../devices/platform/pwm-fan/hwmon/hwmon3"
    assert os.readlink(root / "devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu/device") == \
        "../../../17000000.gpu"
    assert (root / "devices/platform/bus@0/17000000.gpu/of_node/name").read_bytes() == b"gpu\x00"
    for board in BOARDS:
        for dirpath, dirnames, filenames in os.walk(FIXTURES / board):
            for name in dirnames + filenames:
                p = Path(dirpath, name)
                if p.is_symlink():
                    assert not os.path.isabs(os.readlink(p)), p   # never escapes the tree
