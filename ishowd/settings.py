"""The core config sections: storage, retention, sampling, host, exporter, logging.

Other modules declare their own sections beside the code that reads them
(``config.section``); ``etc/ishowd.toml`` documents every key.
"""
from __future__ import annotations

import math

from .config import ConfigError, Key, CROSS_CHECKS, section



section("storage", {
    "path": Key("path", "", "the SQLite file; empty: $STATE_DIRECTORY/ishowd.db or ~/.local/state/ishowd/ishowd.db"),
    "raw_retention": Key("duration", "14d", "how long raw samples are kept", min=3600),
    "minute_retention": Key("duration", "90d", "how long per-minute rollups are kept", min=3600),
    "hour_retention": Key("str", "forever", 'how long per-hour rollups are kept ("forever" or a duration)'),
})

section("sampling", {
    "interval": Key("duration", "10s", "time between samples", min=1),
})

section("host", {
    "sysfs_root": Key("path", "/sys", "every sysfs read goes through this root"),
    "procfs_root": Key("path", "/proc", "every procfs read goes through this root"),
    "disk_paths": Key("pathlist", [], "extra paths whose file system's free space is sampled (the store's and each log's are always)"),
})

section("exporter", {
    "listen": Key("listen", "127.0.0.1:9733", 'address of the Prometheus /metrics endpoint; "" turns it off'),
})

section("logging", {
    "level": Key("str", "info", "the daemon's log level", choices=("debug", "info", "warning", "error")),
})


def hour_retention_seconds(cfg) -> float:
    text = cfg.storage.hour_retention
    if text == "forever":
        return math.inf
    from .config import parse_duration
    return parse_duration(text)


def _check_retention(cfg) -> None:
    st = cfg.storage
    try:
        hour = hour_retention_seconds(cfg)
    except ValueError:
        raise ConfigError(cfg.source, "[storage] hour_retention", '"forever" or a duration such as 365d',
                          st.hour_retention) from None
    if not st.raw_retention <= st.minute_retention <= hour:
        raise ConfigError(cfg.source, "[storage] raw_retention/minute_retention/hour_retention",
                          "", detail="rollups must be kept at least as long as what they summarise "
                                     "(raw <= minute <= hour)")


CROSS_CHECKS.append(_check_retention)
