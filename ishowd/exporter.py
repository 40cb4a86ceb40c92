"""``GET /metrics``: every current reading in the Prometheus exposition format (and ``GET /``,
a page for people: ``ishowd/landing.py``).

Served from a thread of the daemon on ``[exporter] listen``. Each scrape reads
the store read-only (the same query as ``ishowctl status``, and the RTF
histogram's table), so what Prometheus sees is exactly what was stored; names,
help and types come from the registry. prometheus_client, the official client,
writes the exposition (and OpenMetrics or gzip when the scraper asks) and
provides the WSGI server; beyond loopback it is served over TLS.
"""
from __future__ import annotations

import logging
import math
import socket
import socketserver
import ssl
import threading

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, UnknownMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder, gzip_accepted
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString
from wsgiref.simple_server import WSGIRequestHandler

from . import __version__
from .specs.backend import TTS_RTF, TTS_RTF_LAST
from .specs.daemon import BUILD_INFO

log = logging.getLogger("ishowd.exporter")

# A client that connects and then says nothing (or never finishes a TLS handshake) holds its
# request thread this long, never the server's accept loop.
REQUEST_TIMEOUT = 10.0

_FAMILY = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily}


def families(latest, histogram, registry, build_version: str) -> list:
    """Metric families for ``store.reader.Latest`` rows (sorted by name) and
    ``Reader.rtf_histogram()``; help and type from ``registry``. A stored series no declaration
    names is served untyped rather than dropped."""
    info = GaugeMetricFamily(BUILD_INFO.name, BUILD_INFO.help, labels=BUILD_INFO.labels)
    info.add_metric([build_version], 1)
    out, by_name = [info], {}
    for row in latest:
        m = TTS_RTF_LAST if row.name == TTS_RTF.name else registry.get(row.name)
        name = row.name if m is None else m.name
        family = by_name.get(name)
        if family is None:
            family = UnknownMetricFamily(name, "") if m is None else _FAMILY[m.kind](name, m.help)
            by_name[name] = family
            out.append(family)
        # a counter family drops "_total" from its name, its samples keep it
        family.add_sample(name, dict(row.labels), row.value)
    if histogram:
        out.append(histogram_family(TTS_RTF, histogram))
    return out


def histogram_family(metric, series: dict) -> HistogramMetricFamily:
    """``series``: (engine, voice, source) -> {upper bound: (count, sum)}, as the store keeps them
    (per bucket); Prometheus wants the counts cumulative over the bounds, each bound always listed."""
    family = HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
    bounds = metric.buckets + (math.inf,)
    for label_values, stored in sorted(series.items()):
        running, total, buckets = 0, 0.0, []
        for le in bounds:
            count, rtf_sum = stored.get(le, (0, 0.0))
            running += count
            total += rtf_sum
            buckets.append((floatToGoString(le), running))
        family.add_metric(list(label_values), buckets, total)
    return family


class _StoreCollector:
    """What a scrape asks for, read from the store each time (prometheus_client calls ``collect``)."""

    def __init__(self, server, store_path: str, registry):
        self.server, self.store_path, self.registry = server, store_path, registry
        self.version = __version__

    def collect(self):
        from .settings import stale_window
        from .store.reader import Reader
        reader = Reader(self.store_path)
        try:
            latest = reader.current(stale_window(self.server.config))
            histogram = reader.rtf_histogram()
        finally:
            reader.close()
        return families(latest, histogram, self.registry, self.version)


def _app(registry: CollectorRegistry, landing=None):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/" and landing is not None:
            try:
                body = landing()
            except Exception as exc:  # the page must never take the daemon down
                log.warning("landing page failed: %s", exc)
                start_response("503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")])
                return [b"the store cannot be read right now\n"]
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        if environ["PATH_INFO"] != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"only / and /metrics are served here\n"]
        encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT"))
        try:
            body = encoder(registry)
        except Exception as exc:  # a scrape must never take the daemon down
            log.warning("scrape failed: %s", exc)
            start_response("503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"the store cannot be read right now\n"]
        headers = [("Content-Type", content_type)]
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            import gzip
            body = gzip.compress(body)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [body]
    return app


class _Handler(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT

    def log_message(self, fmt, *args):  # scrapes every 15 s would flood the journal
        log.debug("%s " + fmt, self.address_string(), *args)


class _Server(ThreadingWSGIServer):
    """prometheus_client's thread-per-request WSGI server, with the TLS handshake done in the
    request's thread (wrapping the listening socket would do it in the accept loop, where one
    silent client stops every scrape)."""
    tls: ssl.SSLContext | None = None

    def server_bind(self):
        # The stock bind asks DNS for the address's name (socket.getfqdn) only to put it in the
        # WSGI environ: a lookup that can hang the start on a box with no DNS. The address does.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
        self.setup_environ()

    def finish_request(self, request, client_address):
        request.settimeout(REQUEST_TIMEOUT)
        if self.tls is None:
            return super().finish_request(request, client_address)
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:  # no or a wrong client certificate, a port scan
            log.debug("%s: TLS handshake refused: %s", client_address[0], exc)
            return None
        try:
            return super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()


class _Server6(_Server):
    """For an IPv6 address such as [::1]:9733 (the stock server's socket is IPv4 only)."""
    address_family = socket.AF_INET6


def tls_context(section) -> ssl.SSLContext | None:
    """The server's TLS context from ``[exporter] tls_cert``/``tls_key`` (and ``client_ca``:
    client certificates required and verified against it), or None for plain HTTP."""
    if not section.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(section.tls_cert, section.tls_key)
    if section.client_ca:
        context.load_verify_locations(section.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def start(config, store_path: str, registry) -> ThreadingWSGIServer | None:
    """Start serving; when the address cannot be had (in use, not this host's, a name that does
    not resolve) log it once and carry on without it. The config has checked its form and the TLS
    files. A reload that keeps the address goes through ``update``."""
    section = config.exporter
    listen = section.listen
    if not listen:
        return None
    shown_host, _, port = listen.rpartition(":")
    host = shown_host.strip("[]")
    try:
        tls = tls_context(section)
    except (OSError, ssl.SSLError) as exc:  # changed on disk since the config was loaded
        log.error("exporter: cannot load [exporter] tls_cert/tls_key/client_ca (%s); /metrics is off, "
                  "sampling goes on", exc)
        return None
    try:
        server = (_Server6 if ":" in host else _Server)((host, int(port)), _Handler)
    except OSError as exc:
        log.error("exporter: cannot listen on %s (%s); /metrics is off, sampling goes on", listen, exc)
        return None
    server.tls = tls
    server.config = config  # type: ignore[attr-defined]
    collectors = CollectorRegistry(auto_describe=False)
    collectors.register(_StoreCollector(server, store_path, registry))
    def landing() -> bytes:  # the config of now: a reload swaps server.config
        from .landing import page
        return page(server.config, store_path, __version__)
    server.set_app(_app(collectors, landing))
    # No poll timeout: the loop sleeps until a request (or stop()) wakes it, where the default
    # woke the daemon twice a second for nothing.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": None}, name="exporter",
                     daemon=True).start()
    # the port bound, not the one asked for: port 0 is the kernel's pick
    scheme = "https" if tls is not None else "http"
    log.info("serving /metrics on %s://%s:%d/metrics", scheme, shown_host, server.server_address[1])
    return server


def update(server: ThreadingWSGIServer, config) -> None:
    """A reload that keeps the address: the stale window follows the new interval, and the TLS
    files are read again (a certificate renewed in place, TLS turned on or off), for the
    connections accepted from now on."""
    try:
        tls = tls_context(config.exporter)
    except (OSError, ssl.SSLError) as exc:  # changed on disk since the config was loaded
        log.error("exporter: cannot load [exporter] tls_cert/tls_key/client_ca (%s); serving as before", exc)
        return
    if (tls is None) != (server.tls is None):
        log.info("serving /metrics over %s now", "HTTP" if tls is None else "HTTPS")
    server.tls = tls  # type: ignore[attr-defined]
    server.config = config  # type: ignore[attr-defined]


def stop(server: ThreadingWSGIServer) -> None:
    """Stop serving and let the address go (a reload may bind it again at once). Shutting the
    listening socket down wakes the loop's select at once, which has no timeout to wait out."""
    try:
        server.socket.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    server.shutdown()
    server.server_close()
