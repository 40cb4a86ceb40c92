"""Where things live, derived from the config: the store, and every sysfs and procfs path."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path


def default_state_dir() -> str:
    """Where the store lives without a config: systemd's STATE_DIRECTORY, else XDG state."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return state.split(":")[0]
    xdg = os.environ.get("XDG_STATE_HOME")
    base = xdg if xdg else os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "ishowd")


def store_path(config) -> str:
    path = config.storage.path
    return path if path else os.path.join(default_state_dir(), "ishowd.db")


def sys_path(config, *parts: str) -> "Path":
    """A path under ``[host] sysfs_root``: every sysfs read goes through here."""
    from pathlib import Path  # here, not at the top: ishowctl needs store_path alone and starts faster
    return Path(config.host.sysfs_root, *parts)


def proc_path(config, *parts: str) -> "Path":
    """A path under ``[host] procfs_root``."""
    from pathlib import Path
    return Path(config.host.procfs_root, *parts)


def meminfo_kb(text: str, *keys: str) -> dict[str, int]:
    """Pick ``keys`` out of /proc/meminfo text; values in kB as written there. Each key is found
    by a search for its line, not by splitting all sixty-odd lines."""
    out: dict[str, int] = {}
    for key in keys:
        head = key + ":"
        if text.startswith(head):
            at = 0
        else:
            at = text.find("\n" + head) + 1
            if not at:
                continue
        start = at + len(head)
        end = text.find("\n", start)
        try:
            out[key] = int(text[start:end if end >= 0 else len(text)].split()[0])
        except (IndexError, ValueError):
            continue
    return out
