"""Serving the metrics: what a scrape contains, who may read it, and the consumer's own port.

A scrape is this process's metrics (or, in multiprocess mode, every process's that writes
``PROMETHEUS_MULTIPROC_DIR``, merged) plus the database gauges (``collectors``). The web
serves it at ``/metrics`` (``views``); a consumer with ``NOTIFY_METRICS_PORT`` serves it on
``NOTIFY_METRICS_BIND`` (127.0.0.1 by default) from a thread of its own.

Who may read it: with ``NOTIFY_METRICS_TOKEN`` set, a request carrying
``Authorization: Bearer <token>``, everywhere. Without one, the web's ``/metrics`` is off
(404): behind a reverse proxy on the same host every client comes from 127.0.0.1, so an
address rule would open it to the world. A consumer's port without a token relies on its
bind (loopback unless told otherwise).
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings
from django.db import connections
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from notifications.operations import metrics
from notifications.operations.collectors import DatabaseCollector

logger = logging.getLogger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The directory this process's metrics are written to, if multiprocess."""
    return os.environ.get(MULTIPROCESS_ENV) or None


@functools.cache
def scrape_registry() -> CollectorRegistry:
    """What a scrape of this process shows (built once)."""
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(metrics.REGISTRY)
    registry.register(DatabaseCollector())
    return registry


def authorized(header: str | None) -> bool | None:
    """Whether an ``Authorization`` header value may read the metrics; None when no token
    is set (the caller decides)."""
    token = settings.NOTIFY_METRICS_TOKEN
    if not token:
        return None
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


# --- a directory shared by the processes of one host ----------------------------------------


def prepare_multiprocess_dir(path: Path) -> Path:
    """``path`` created (0700) and emptied of metrics files left by an earlier run, whose
    processes are gone: their counts would be added to the new ones'."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    for leftover in path.glob("*.db"):
        leftover.unlink(missing_ok=True)
    return path


def process_gone(pid: int, path: Path) -> None:
    """A process of ``path`` ended: its live gauges (paced jobs waiting) stop counting; its
    counters stay, so totals never go down."""
    mark_process_dead(pid, str(path))


# --- a consumer's own port --------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are not logged."""


class _Server(ThreadingWSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def metrics_app() -> Callable:
    """The WSGI app of a consumer's port: the token check (when set), then the scrape. Each
    request's thread closes its database connection when done."""
    scrape = make_wsgi_app(scrape_registry())

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            if authorized(environ.get("HTTP_AUTHORIZATION")) is False:
                start_response(
                    "401 Unauthorized",
                    [
                        ("Content-Type", "text/plain"),
                        ("WWW-Authenticate", 'Bearer realm="metrics"'),
                    ],
                )
                return [b"a bearer token is needed\n"]
            return scrape(environ, start_response)
        finally:
            connections.close_all()

    return app


def serve(port: int, bind: str) -> _Server | None:
    """Serve the metrics on ``bind:port`` from a daemon thread; None (logged) when the
    address can't be bound."""
    server_class = _Server6 if ":" in bind else _Server
    try:
        server = make_server(bind, port, metrics_app(), server_class, handler_class=_QuietHandler)
    except OSError as err:
        logger.error("metrics not served on %s:%s: %s", bind, port, err)
        return None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    if not settings.NOTIFY_METRICS_TOKEN and bind not in ("127.0.0.1", "::1", "localhost"):
        logger.warning(
            "metrics served on %s:%s without NOTIFY_METRICS_TOKEN: anyone who reaches that "
            "address reads them",
            bind,
            port,
        )
    logger.info("metrics served on %s:%s/metrics", bind, port)
    return server
