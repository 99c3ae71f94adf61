"""The one HTTP path of every HTTP provider (Telegram, SMS Aero): post, decode, classify.

One pooled ``requests`` session per process, explicit timeouts, and one rule for what a
failed request means: only an error before the request went out (connection refused, DNS,
the TLS handshake, a connect timeout) means "not sent". A read timeout or a connection
dropped after the request was written may have been accepted: ``ambiguous``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from notifications.senders.base import DeliveryError

_session: requests.Session | None = None
# Errors urllib3 raises before a request is written: nothing reached the provider.
_CONNECT_PHASE = (
    urllib3.exceptions.NewConnectionError,  # refused, unreachable, DNS (NameResolutionError)
    urllib3.exceptions.ConnectTimeoutError,
    urllib3.exceptions.SSLError,  # the TLS handshake
    urllib3.exceptions.ProxyError,
)


class Unreachable(DeliveryError):
    """The request never reached the provider (refused, DNS, TLS handshake, connect timeout)."""


def http_session() -> requests.Session:
    """A process-wide ``requests.Session`` whose pool fits many worker threads.

    ``trust_env`` is off: ``requests`` would otherwise re-read proxy, netrc and CA settings
    from the environment on every call. ``post_json`` passes what the environment says,
    looked up once per host.
    """
    global _session
    if _session is None:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=64, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = "notification-service/1.0"
        session.trust_env = False
        _session = session
    return _session


@functools.lru_cache(maxsize=64)
def _proxies_for(origin: str) -> dict[str, str]:
    return dict(requests.utils.get_environ_proxies(origin))


def _environment(url: str) -> dict[str, Any]:
    """The proxies and CA bundle the environment sets for ``url`` (as ``trust_env`` would)."""
    parts = urlsplit(url)
    verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return {"proxies": _proxies_for(f"{parts.scheme}://{parts.netloc}"), "verify": verify}


def reset_http_session() -> None:
    """Forget the session (tests that change ``REQUESTS_CA_BUNDLE`` call this)."""
    global _session
    if _session is not None:
        _session.close()
    _session = None


def connect_phase(err: requests.RequestException) -> bool:
    """True when ``err`` happened before the request was written (so nothing was sent)."""
    if isinstance(err, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return True
    if isinstance(err, requests.ConnectionError):
        reason = err.args[0] if err.args else None
        reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the cause
        return isinstance(reason, _CONNECT_PHASE)
    return False


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
    """POST ``json`` to ``url``; the decoded JSON object (``{}`` when the body isn't one).

    Raises ``Unreachable`` for connect-phase errors, an ambiguous ``DeliveryError`` otherwise.
    ``describe_url`` names the endpoint in errors (the real URL may carry a token).
    """
    where = f"{provider} ({describe_url})" if describe_url else provider
    try:
        response = http_session().post(
            url, json=json or {}, auth=auth, timeout=timeout, **_environment(url)
        )
    except requests.RequestException as err:
        if connect_phase(err):
            raise Unreachable(f"{where} unreachable: {type(err).__name__}") from err
        if isinstance(err, requests.Timeout):
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
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        payload = {"_not_json": f"HTTP {response.status_code}, not a {provider} answer"}
    return HttpAnswer(response.status_code, payload)


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
