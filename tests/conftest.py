"""Shared fixtures: a temp config + store, and the installed entry points."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def entry_point(name: str) -> str:
    """The installed console script (the real thing a user runs)."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed next to {sys.executable}: run `pip install .` first")
    return str(path)


def write_config(dirpath: Path, extra: str = "", **sections: dict) -> Path:
    """A config whose store lives in ``dirpath``, with the exporter off (tests run in parallel)."""
    text = f'[storage]\npath = "{dirpath / "ishowd.db"}"\n\n[exporter]\nlisten = ""\n'
    for name, keys in sections.items():
        text += f"\n[{name}]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in keys.items())
    path = dirpath / "ishowd.toml"
    path.write_text(text + extra)
    return path


@pytest.fixture
def cfg_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def clean_env(monkeypatch):
    """No config from the environment or the machine leaks into a test."""
    monkeypatch.delenv("ISHOWD_CONFIG", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    return monkeypatch


def run(*argv: str, env: dict | None = None, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "ISHOWD_CONFIG"}
    full_env.update(env or {})
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=full_env, **kw)


def pytest_addoption(parser):
    parser.addoption("--regen-golden", action="store_true", default=False,
                     help="rewrite tests/golden/*.json from this run instead of comparing (review the diff!)")


@pytest.fixture
def regen_golden(request) -> bool:
    return request.config.getoption("--regen-golden")
