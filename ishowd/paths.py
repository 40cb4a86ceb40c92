"""Where things live, derived from the config."""
from __future__ import annotations

from pathlib import Path


def store_path(config) -> str:
    from .config import default_state_dir
    path = config.storage.path
    return path if path else str(default_state_dir() / "ishowd.db")


def sys_path(config, *parts: str) -> Path:
    """A path under ``[host] sysfs_root``: every sysfs read goes through here."""
    return Path(config.host.sysfs_root, *parts)


def proc_path(config, *parts: str) -> Path:
    """A path under ``[host] procfs_root``."""
    return Path(config.host.procfs_root, *parts)
