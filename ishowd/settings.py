"""The core config sections (storage, retention, sampling, host, exporter, logging) and what
follows from them: the hour rollups' retention in seconds and the stale window.

Other modules declare their own sections beside the code that reads them
(``KEYS``); the catalog gathers them all; ``etc/ishowd.toml`` documents every key.
"""
from __future__ import annotations

import math

from .config import ConfigError, Key, format_duration, parse_duration, shown

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
        "tls_cert": Key("path", "", "the server's certificate (PEM, its chain after it): /metrics over HTTPS; "
                        "needed beyond loopback"),
        "tls_key": Key("path", "", "the certificate's private key (PEM)"),
        "client_ca": Key("path", "", "CA certificates (PEM): when set, a scraper must present a certificate they "
                         "signed"),
        "plaintext": Key("bool", False, "true: serve plain HTTP beyond loopback too"),
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


def _loopback(host: str) -> bool:
    import socket
    host = host.strip("[]")
    if host == "localhost" or host.startswith("127."):
        return True
    try:
        return socket.inet_pton(socket.AF_INET6, host) == socket.inet_pton(socket.AF_INET6, "::1")
    except OSError:
        return False


def _check_exporter(cfg) -> None:
    """Beyond loopback a scrape crosses a network: TLS from the configured files, unless plain HTTP
    is asked for by name. The files are read here, so a bad one stops the load, not the exporter."""
    ex = cfg.exporter
    if ex.client_ca and not ex.tls_cert:
        raise ConfigError(cfg.source, "[exporter] client_ca", "", detail="client certificates need TLS: set "
                          "tls_cert and tls_key too")
    if bool(ex.tls_cert) != bool(ex.tls_key):
        raise ConfigError(cfg.source, "[exporter] tls_cert/tls_key", "", detail="the two go together: set both "
                          "(or neither, for plain HTTP on loopback)")
    if ex.listen and not ex.tls_cert and not ex.plaintext and not _loopback(ex.listen.rpartition(":")[0]):
        raise ConfigError(cfg.source, "[exporter] listen", "", detail=f"{shown(ex.listen)} is beyond loopback: set "
                          "[exporter] tls_cert and tls_key (and client_ca to require client certificates), "
                          "or plaintext = true on a private network")
    if not ex.tls_cert:
        return
    import ssl
    for key in ("tls_cert", "tls_key", "client_ca"):
        path = ex[key]
        if not path:
            continue
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as exc:
            raise ConfigError(cfg.source, f"[exporter] {key}", "", detail=f"cannot read {shown(path)}: "
                              f"{exc.strerror or exc}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(ex.tls_cert, ex.tls_key)
    except ssl.SSLError as exc:
        raise ConfigError(cfg.source, "[exporter] tls_cert/tls_key", "", detail=f"not a PEM certificate and "
                          f"its private key ({exc.reason or exc})") from None
    if ex.client_ca:
        try:
            context.load_verify_locations(ex.client_ca)
        except ssl.SSLError as exc:
            raise ConfigError(cfg.source, "[exporter] client_ca", "", detail=f"not PEM CA certificates "
                              f"({exc.reason or exc})") from None


CHECKS = (_check_retention, _check_exporter)
