"""``GET /metrics``: every current reading in the Prometheus text exposition format.

Served from a thread of the daemon on ``[exporter] listen``. Each scrape reads
the store read-only (the same query as ``ishowctl status``), so what Prometheus
sees is exactly what was stored; names, help and types come from the registry.
"""
from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("ishowd.exporter")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if not float(v).is_integer() or abs(v) >= 1e15 else str(int(v))


def render(latest, registry) -> str:
    """Exposition text for ``store.reader.Latest`` rows (sorted by name); help and type from ``registry``."""
    lines, seen = [], set()
    for row in latest:
        m = registry.get(row.name)
        if row.name not in seen:
            seen.add(row.name)
            if m is not None:
                lines.append(f"# HELP {row.name} {m.help.replace(chr(92), chr(92) * 2).replace(chr(10), ' ')}")
                lines.append(f"# TYPE {row.name} {m.kind}")
        labels = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(row.labels.items()))
        lines.append(f"{row.name}{{{labels}}} {_number(row.value)}" if labels else f"{row.name} {_number(row.value)}")
    return "\n".join(lines) + "\n"


class _Handler(BaseHTTPRequestHandler):
    server_version = "ishowd"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404, "only /metrics is served here")
            return
        try:
            body = self.server.scrape().encode()  # type: ignore[attr-defined]
        except Exception as exc:  # a scrape must never take the daemon down
            log.warning("scrape failed: %s", exc)
            self.send_error(503, "the store cannot be read right now")
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # scrapes every 15 s would flood the journal
        log.debug("%s " + fmt, self.address_string(), *args)


class _Server6(ThreadingHTTPServer):
    """For an IPv6 address such as [::1]:9733 (the stock server's socket is IPv4 only)."""
    address_family = socket.AF_INET6


def start(config, store_path: str, registry) -> ThreadingHTTPServer | None:
    """Start serving; when the address cannot be had (in use, not this host's, a name that does
    not resolve) log it once and carry on without it. The config has checked its form. A reload
    that keeps the address sets the server's ``config`` (the stale window follows the interval)."""
    listen = config.exporter.listen
    if not listen:
        return None
    shown_host, _, port = listen.rpartition(":")
    host = shown_host.strip("[]")
    from .settings import stale_window
    from .store.reader import Reader

    def scrape() -> str:
        reader = Reader(store_path)
        try:
            return render(reader.current(stale_window(server.config)), registry)
        finally:
            reader.close()

    try:
        server = (_Server6 if ":" in host else ThreadingHTTPServer)((host, int(port)), _Handler)
    except OSError as exc:
        log.error("exporter: cannot listen on %s (%s); /metrics is off, sampling goes on", listen, exc)
        return None
    server.daemon_threads = True
    server.config = config  # type: ignore[attr-defined]
    server.scrape = scrape  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, name="exporter", daemon=True).start()
    # the port bound, not the one asked for: port 0 is the kernel's pick
    log.info("serving /metrics on http://%s:%d/metrics", shown_host, server.server_address[1])
    return server


def stop(server: ThreadingHTTPServer) -> None:
    """Stop serving and let the address go (a reload may bind it again at once)."""
    server.shutdown()
    server.server_close()
