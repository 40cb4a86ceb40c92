"""The core config sections (storage, retention, sampling, host, exporter, logging) and what
follows from them: the hour rollups' retention in seconds and the stale window.

Other modules declare their own sections beside the code that reads them
(``KEYS``); the catalog gathers them all; ``etc/ishowd.toml`` documents every key.
"""
from __future__ import annotations

import math

from .config import ConfigError, Key, format_duration, parse_duration

# Retention: at least an hour (sealing works an hour at a time), at most ten years ("forever"
# is how the hour rollups are kept longer).
RETENTION_MIN, RETENTION_MAX = 3600, 3650 * 86400


def _hour_retention_problem(text: str) -> str | None:
    if text == "forever":
        return None
    try:
        if RETENTION_MIN <= parse_duration(text) <= RETENTION_MAX:
            return None
    except ValueError:
        pass
    return (f'"forever" or a duration such as 365d between {format_duration(RETENTION_MIN)} '
            f'and {format_duration(RETENTION_MAX)}')


KEYS = {
    "storage": {
        "path": Key("path", "", "the SQLite file; empty: $STATE_DIRECTORY/ishowd.db or ~/.local/state/ishowd/ishowd.db"),
        "raw_retention": Key("duration", "14d", "how long raw samples are kept",
                             min=RETENTION_MIN, max=RETENTION_MAX),
        "minute_retention": Key("duration", "90d", "how long per-minute rollups are kept",
                                min=RETENTION_MIN, max=RETENTION_MAX),
        "hour_retention": Key("str", "forever", 'how long per-hour rollups are kept ("forever" or a duration)',
                              check=_hour_retention_problem),
    },
    "sampling": {
        "interval": Key("duration", "10s", "time between samples", min=1, max=3600),
    },
    "host": {
        "sysfs_root": Key("path", "/sys", "every sysfs read goes through this root"),
        "procfs_root": Key("path", "/proc", "every procfs read goes through this root"),
        "disk_paths": Key("pathlist", [], "extra paths whose file system's free space is sampled (the store's and "
                          "each log's are always)"),
    },
    "exporter": {
        "listen": Key("listen", "127.0.0.1:9733", 'address of the Prometheus /metrics endpoint; "" turns it off'),
    },
    "logging": {
        "level": Key("str", "info", "the daemon's log level", choices=("debug", "info", "warning", "error")),
    },
}


def hour_retention_seconds(cfg) -> float:
    text = cfg.storage.hour_retention
    if text == "forever":
        return math.inf
    return parse_duration(text)


def stale_window(cfg) -> float:
    """How old a series' newest sample may be and still count as a current reading (status,
    /metrics, alert rules): three sampling intervals, at least 90 s."""
    return max(3 * cfg.sampling.interval, 90.0)


def _check_retention(cfg) -> None:
    st = cfg.storage
    if not st.raw_retention <= st.minute_retention <= hour_retention_seconds(cfg):
        raise ConfigError(cfg.source, "[storage] raw_retention/minute_retention/hour_retention",
                          "", detail="rollups must be kept at least as long as what they summarise "
                                     "(raw <= minute <= hour)")


CHECKS = (_check_retention,)
