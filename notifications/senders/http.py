"""The one HTTP path of every HTTP provider (Telegram, SMS Aero): post, decode, classify.

One pool of kept-alive connections per process (urllib3, which ``requests`` is built on,
without ``requests``' per-call machinery), explicit timeouts, no retries, and one rule for what
a failed request means: only an error before the request went out (connection refused, DNS,
the TLS handshake, a connect timeout) means "not sent" (``Unreachable``). A read timeout or a
connection dropped after the request was written may have been accepted: ``ambiguous``.

The environment is honoured as ``requests`` does: ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``
(else certifi's bundle) and ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``.
"""

from __future__ import annotations

import base64
import functools
import json as jsonlib
import os
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import certifi
import requests
import urllib3
import urllib3.exceptions as u3

from notifications.senders.base import DeliveryError

USER_AGENT = "notification-service/1.0"
# Errors raised before a request is written: nothing reached the provider.
_CONNECT_PHASE = (
    u3.NewConnectionError,  # refused, unreachable, DNS (NameResolutionError)
    u3.ConnectTimeoutError,
    u3.SSLError,  # the TLS handshake
    u3.ProxyError,
)


class Unreachable(DeliveryError):
    """The request never reached the provider (refused, DNS, TLS handshake, connect timeout)."""


_pools: dict[tuple[str, str], urllib3.PoolManager] = {}
_pools_lock = threading.Lock()


@functools.lru_cache(maxsize=64)
def _proxy_for(scheme: str, host: str) -> str:
    """The proxy the environment names for ``scheme://host``, or "" (cached per host)."""
    if urllib.request.proxy_bypass(host):
        return ""
    return urllib.request.getproxies().get(scheme, "")


def _ca_bundle() -> str:
    return (
        os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    )


def pool_for(url: str) -> urllib3.PoolManager:
    """The process's connection pool for ``url`` (one per CA bundle and proxy)."""
    parts = urlsplit(url)
    key = (_ca_bundle(), _proxy_for(parts.scheme, parts.hostname or ""))
    pool = _pools.get(key)
    if pool is None:
        with _pools_lock:
            pool = _pools.get(key)
            if pool is None:
                options = {"num_pools": 16, "maxsize": 64, "block": False, "ca_certs": key[0]}
                pool = (
                    urllib3.ProxyManager(key[1], **options)
                    if key[1]
                    else urllib3.PoolManager(**options)
                )
                _pools[key] = pool
    return pool


def reset_http_session() -> None:
    """Close every pooled connection (tests that change the CA bundle call this)."""
    with _pools_lock:
        for pool in _pools.values():
            pool.clear()
        _pools.clear()
    _proxy_for.cache_clear()


def connect_phase(err: BaseException) -> bool:
    """True when ``err`` happened before the request was written (so nothing was sent).

    Understands urllib3's errors and ``requests``' (which wrap them).
    """
    if isinstance(err, _CONNECT_PHASE):
        return True
    if isinstance(err, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return True
    if isinstance(err, (requests.ConnectionError, u3.MaxRetryError)):
        reason = err.args[0] if isinstance(err, requests.ConnectionError) and err.args else err
        reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the cause
        return isinstance(reason, _CONNECT_PHASE)
    return False


@functools.lru_cache(maxsize=256)
def _target(url: str) -> tuple[str, str, int | None, str]:
    """``url`` as (scheme, host, port, path with query), parsed once."""
    parts = urllib3.util.parse_url(url)
    return parts.scheme or "http", parts.host or "", parts.port, parts.request_uri


def send_request(
    url: str, body: bytes, headers: dict[str, str], timeout: float
) -> urllib3.BaseHTTPResponse:
    """POST ``body`` to ``url`` once (no retries, no redirects): the one network call, which
    unit tests of error mapping may patch."""
    manager = pool_for(url)
    limits = urllib3.Timeout(connect=timeout, read=timeout)
    if isinstance(manager, urllib3.ProxyManager):
        return manager.urlopen(
            "POST", url, body=body, headers=headers, timeout=limits, retries=False, redirect=False
        )
    scheme, host, port, path = _target(url)
    return manager.connection_from_host(host, port, scheme).urlopen(
        "POST",
        path,
        body=body,
        headers=headers,
        timeout=limits,
        retries=False,
        redirect=False,
        assert_same_host=False,
    )


@dataclass
class HttpAnswer:
    status_code: int
    payload: dict[str, Any]


def post_json(
    url: str,
    *,
    provider: str,
    timeout: float,
    json: dict[str, Any] | None = None,
    auth: tuple[str, str] | None = None,
    describe_url: str = "",
) -> HttpAnswer:
    """POST ``json`` to ``url``; the decoded JSON object (one with ``_not_json`` when the body
    isn't one).

    Raises ``Unreachable`` for connect-phase errors, an ambiguous ``DeliveryError`` otherwise.
    ``describe_url`` names the endpoint in errors (the real URL may carry a token).
    """
    where = f"{provider} ({describe_url})" if describe_url else provider
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    body = jsonlib.dumps(json or {}, ensure_ascii=False).encode()
    try:
        response = send_request(url, body, headers, timeout)
    except (u3.HTTPError, OSError) as err:
        if connect_phase(err):
            raise Unreachable(f"{where} unreachable: {type(err).__name__}") from err
        if isinstance(err, (u3.ReadTimeoutError, TimeoutError)):
            raise DeliveryError(
                f"{where} did not answer in {timeout:g}s (it may have accepted the request)",
                ambiguous=True,
            ) from err
        raise DeliveryError(
            f"{where}: the connection broke after the request was sent "
            f"({type(err).__name__}; it may have been accepted)",
            ambiguous=True,
        ) from err
    try:
        payload = jsonlib.loads(response.data)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        payload = {"_not_json": f"HTTP {response.status}, not a {provider} answer"}
    return HttpAnswer(response.status, payload)


def call(
    url: str,
    *,
    provider: str,
    timeout: float,
    classify: Callable[[HttpAnswer], Any],
    json: dict[str, Any] | None = None,
    auth: tuple[str, str] | None = None,
    describe_url: str = "",
) -> Any:
    """``post_json`` then ``classify(answer)``, which returns the result or raises."""
    answer = post_json(
        url,
        provider=provider,
        timeout=timeout,
        json=json,
        auth=auth,
        describe_url=describe_url,
    )
    return classify(answer)
