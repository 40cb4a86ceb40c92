"""Where things live, derived from the config: the store, and every sysfs and procfs path."""
from __future__ import annotations

import os
from pathlib import Path


def default_state_dir() -> Path:
    """Where the store lives without a config: systemd's STATE_DIRECTORY, else XDG state."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "ishowd"


def store_path(config) -> str:
    path = config.storage.path
    return path if path else str(default_state_dir() / "ishowd.db")


def sys_path(config, *parts: str) -> Path:
    """A path under ``[host] sysfs_root``: every sysfs read goes through here."""
    return Path(config.host.sysfs_root, *parts)


def proc_path(config, *parts: str) -> Path:
    """A path under ``[host] procfs_root``."""
    return Path(config.host.procfs_root, *parts)
