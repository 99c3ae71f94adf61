"""The operations endpoints: ``/healthz``, ``/readyz`` and ``/metrics``.

``ProbeMiddleware`` (first in ``MIDDLEWARE``) answers them before anything else runs: no
session, no language, no host check and no HTTPS redirect, so a load balancer or Prometheus
may call them by address over plain HTTP inside the network, and ``/healthz`` touches nothing
but this process. None of them discloses a host name, an address or an error text.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from notifications.operations import checks
from notifications.operations.exposition import authorized, scrape_registry


def _json(payload: dict, status: int) -> JsonResponse:
    response = JsonResponse(payload, status=status)
    response["Cache-Control"] = "no-store"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """200 while this process answers; no database, no queue."""
    return _json({"status": "ok"}, 200)


def readyz(request: HttpRequest) -> HttpResponse:
    """200 when every check passes, else 503; each check's answer by name."""
    answers = checks.readiness()
    ready = all(answer == checks.OK for answer in answers.values())
    return _json(
        {"status": "ok" if ready else "unavailable", "checks": answers}, 200 if ready else 503
    )


def metrics(request: HttpRequest) -> HttpResponse:
    """The scrape; 401 without the bearer token, 404 when no token is set (off)."""
    allowed = authorized(request.headers.get("Authorization"))
    if allowed is None:
        return _json({"detail": "metrics are off: set NOTIFY_METRICS_TOKEN"}, 404)
    if not allowed:
        response = _json({"detail": "a bearer token is needed"}, 401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


ENDPOINTS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": metrics,
}


class ProbeMiddleware:
    """Answers GET and HEAD of ``ENDPOINTS`` (with or without a trailing slash) first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = ENDPOINTS.get(request.path_info.rstrip("/"))
        if view is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = _json({"detail": "GET only"}, 405)
            response["Allow"] = "GET, HEAD"
            response._has_been_logged = True
            return response
        response = view(request)
        # Not logged by Django as a failed request: a probe fails every second while the
        # database is down (checks logs why, once a minute).
        response._has_been_logged = True
        return response
