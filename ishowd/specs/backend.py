"""The backend: its ``[backend]`` and ``[rtf]`` keys and every metric about it.

``backend_up`` and ``backend_rss_bytes`` come from ``ishowd/collectors/backend.py``;
``tts_rtf`` and the log counters from the log ingestion (``ishowd/tasks/log_ingest.py``
over ``ishowd/backend/ingest.py``). Both import their keys and metrics from here.
"""
from __future__ import annotations

import re
from typing import Optional

from ..config import ConfigError, Key, host_problem, port_problem, shown
from ..metrics import declare

URL_HINT = "an http:// or https:// URL such as http://127.0.0.1:27121"


def _check_url(url: str) -> Optional[str]:
    """``http(s)://host[:port][/path]``: what urllib would refuse on every probe (a port past
    65535, a space, no host) is refused here, once."""
    scheme, sep, rest = url.partition("://")
    if scheme not in ("http", "https") or not sep or not url.isprintable() or " " in url:
        return URL_HINT
    authority = rest.split("/", 1)[0]
    host, colon, port = authority.rpartition(":")
    if not colon or "]" in port:          # no port: "host" or "[::1]"
        host, port = authority, None
    if not host:
        return URL_HINT
    problem = host_problem(host)
    if problem:
        return f"{problem} in {URL_HINT}"
    problem = None if port is None else port_problem(port, 1)
    return f"{problem} after the host, in {URL_HINT}" if problem else None


KEYS_BACKEND = {
    "url": Key("str", "http://127.0.0.1:27121", "the backend's base URL (health probe, HTTP benchmark)",
               check=_check_url),
    "health_interval": Key("duration", "30s", "how often GET /api/health is probed (each probe adds two lines "
                           "to the backend's log)", min=1, max=3600),
    "health_timeout": Key("duration", "2s", "the probe's timeout: slower counts as down", min=0.001, max=60),
    "binary": Key("path", "/ssd/ishowtts/target/release/ishowtts-backend",
                  "the backend executable: its process is found by this path (its /proc/PID/exe), never by a "
                  "name substring, for backend_rss_bytes"),
}

BACKEND_UP = declare("backend_up", "boolean", "1 when GET /api/health answers {\"status\": \"ok\"} in time, else 0.",
                     group="backend")
BACKEND_RSS = declare("backend_rss_bytes", "bytes", "Resident memory of the backend process (VmRSS).",
                      group="backend")


DEFAULT_LOG = "/ssd/ishowtts/logs/backend.log"


def _regex_list(patterns) -> Optional[str]:
    for p in patterns:
        try:
            re.compile(p)
        except (re.error, OverflowError) as exc:    # OverflowError: a repeat count such as {99999999999}
            return f"a list of regular expressions ({shown(p)}: {exc})"
        except RecursionError:                       # what the parser raises for hundreds of nested groups
            return f"a list of regular expressions ({shown(p)}: nested too deeply)"
    return None


KEYS_RTF = {
    "logs": Key("pathlist", [DEFAULT_LOG], "the backend logs to read, one or more; each is truncated at every "
                "backend start, rotated by copy-then-truncate or by rename: all are followed"),
    "interval": Key("duration", "5s", "how often new log lines are read", min=1, max=3600),
    "batch_bytes": Key("int", 4 << 20, "at most this many bytes are read per transaction (the writer lock is "
                       "released between batches, so a long catch-up never holds up a sampling tick)",
                       min=1 << 17, max=256 << 20),
    "catchup_workers": Key("int", -1, "worker processes that scan a long backlog in parallel (the daemon commits "
                           "in order); -1: half the usable cores, at least 2 and at most 4, none on one core; 0: never",
                           min=-1, max=64),
    "catchup_from": Key("int", 64 << 20, "a backlog of at least this many bytes is scanned by the workers",
                        min=1 << 17, max=1 << 40),
    "ignore_errors": Key("strlist", ["GPU device discovery failed"],
                         "regular expressions: error/warning lines matching one are not counted in "
                         "backend_log_errors_total (the onnxruntime device-discovery warning is harmless)",
                         check=_regex_list),
    "rotated": Key("strlist", ["*", "archive/*/*"],
                   "where rotated copies of a log are looked for, as globs relative to the log's directory "
                   "(the lines a rotation moved away before they were read are read from the copy)"),
    "follow_rotated": Key("duration", "10m", "a log renamed away (rename rotation) is followed until it has "
                          "not grown for this long", min=0, max=7 * 86400),
    "baseline": Key("float", 0.30, "the RTF baseline of `ishowctl rtf weekly` (its --baseline default)",
                    min=0.001, max=100),
    "threshold": Key("float", 0.20, "a week regresses when its mean API RTF exceeds baseline x (1 + threshold) "
                     "(--threshold default)", min=0, max=10),
    "min_requests": Key("int", 20, "weeks with fewer API requests than this are reported but not judged",
                        min=1, max=1_000_000),
    "hot_celsius": Key("float", 80.0, "GPU temperature from which `rtf weekly` names heat as a likely cause",
                       min=0, max=150),
}


def _check_logs(cfg) -> None:
    if not cfg.rtf.logs:
        return
    if len(set(cfg.rtf.logs)) != len(cfg.rtf.logs):
        raise ConfigError(cfg.source, "[rtf] logs", "a list of distinct paths", cfg.rtf.logs)


# Bounds that resolve the targets (0.30 baseline, 0.20 goal, 0.15 stretch) and the 0.35 alert, then
# coarser ones for a backend gone wrong. Migration 0006 made the store's buckets from these.
RTF_BUCKETS = (0.15, 0.20, 0.25, 0.30, 0.35, 0.5, 1, 2, 5)

# Stored as one sample per synthesis (status, history, the alert rules read those); /metrics serves
# it as a histogram over every record in the store (``store.reader.Reader.rtf_histogram``), so a
# restart is no counter reset, with the newest value beside it as ``tts_rtf_last``.
TTS_RTF = declare("tts_rtf", "ratio", "Real-time factor of one synthesis: wall time over audio time (lower is "
                  "faster; the first request after a backend start includes model compilation).",
                  ("engine", "voice", "source"), kind="histogram", group="rtf", buckets=RTF_BUCKETS)
# A histogram and a gauge cannot share a name in one exposition.
TTS_RTF_LAST = declare("tts_rtf_last", "ratio", "Real-time factor of the newest synthesis (tts_rtf's latest sample).",
                       ("engine", "voice", "source"), group="rtf")
LOG_ERRORS = declare("backend_log_errors_total", "count",
                     "Error lines in the backend log: WARN and ERROR tracing lines (level warn/error) and other "
                     "lines saying error, exception or failed (level other), less [rtf] ignore_errors.",
                     ("level",), kind="counter", group="backend")
HTTP_REQUESTS = declare("backend_http_requests_total", "count",
                        "Finished HTTP requests in the backend log, by status class (2xx, 4xx, 5xx, ...).",
                        ("status",), kind="counter", group="backend")
STARTS = declare("backend_starts_total", "count", "Backend starts seen in the log (its 'backend ready' line).",
                 kind="counter", group="backend")
LOG_LINES = declare("backend_log_lines_total", "count",
                    "Backend log lines read, by kind: synthesis (records), noise (not tracing lines: Python "
                    "prints, tqdm bars, cargo, onnxruntime; skipped), malformed (a synthesis line that did not "
                    "parse).", ("kind",), kind="counter", group="backend")
COMPILE_FALLBACKS = declare("backend_compile_fallbacks_total", "count",
                            "Times F5-TTS said torch.compile() failed and fell back to eager mode (its "
                            "'[F5TTS] Warning: torch.compile() failed' line): synthesis is then much slower.",
                            kind="counter", group="backend")


KEYS = {"backend": KEYS_BACKEND, "rtf": KEYS_RTF}
CHECKS = (_check_logs,)
METRICS = (BACKEND_UP, BACKEND_RSS, TTS_RTF, TTS_RTF_LAST, LOG_ERRORS, HTTP_REQUESTS, STARTS, LOG_LINES, COMPILE_FALLBACKS)
