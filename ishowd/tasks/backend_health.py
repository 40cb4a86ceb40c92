"""The backend health probe: ``GET /api/health`` with a short timeout, on its own interval.

Every probe adds two lines to the backend's log (and the web UI already
polls every 30 s), so the default interval is 30 s, not the sampling tick.
"""
from __future__ import annotations

import json
from typing import Optional

from ..config import Key, section
from ..metrics import Sample, declare
from . import Task, register


def _check_url(url: str) -> Optional[str]:
    if not url.startswith(("http://", "https://")):
        return "an http:// or https:// URL such as http://127.0.0.1:27121"
    return None


section("backend", {
    "url": Key("str", "http://127.0.0.1:27121", "the backend's base URL (health probe, HTTP benchmark)",
               check=_check_url),
    "health_interval": Key("duration", "30s", "how often GET /api/health is probed (each probe adds two lines "
                           "to the backend's log)", min=1),
    "health_timeout": Key("duration", "2s", "the probe's timeout: slower counts as down", min=0.001),
    "binary": Key("path", "/ssd/ishowtts/target/release/ishowtts-backend",
                  "the backend executable: its process is found by this path (its /proc/PID/exe), never by a "
                  "name substring, for backend_rss_bytes"),
})

BACKEND_UP = declare("backend_up", "boolean", "1 when GET /api/health answers {\"status\": \"ok\"} in time, else 0.",
                     group="backend")


def probe(url: str, timeout: float) -> float:
    """1.0 when the health endpoint answers 200 with status ok, else 0.0. Never raises."""
    import urllib.request
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    try:
        with opener.open(url.rstrip("/") + "/api/health", timeout=timeout) as resp:
            if resp.status != 200:
                return 0.0
            body = json.loads(resp.read(65536) or b"null")
    except Exception:  # refused, timed out, reset, not JSON: all mean "not up"
        return 0.0
    return 1.0 if isinstance(body, dict) and body.get("status") == "ok" else 0.0


@register
class BackendHealth(Task):
    name = "backend-health"
    order = 20

    def interval(self) -> Optional[float]:
        return self.config.backend.health_interval

    def run(self, now: float) -> None:
        cfg = self.config.backend
        self.store.write(now, [Sample(BACKEND_UP, probe(cfg.url, cfg.health_timeout))])
