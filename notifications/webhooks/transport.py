"""Posting one webhook: the only code here that touches the network.

One ``requests`` session per lane thread (connections kept alive between posts to the same
endpoint), ``NOTIFY_WEBHOOK_TIMEOUT`` for connecting and for each read, no redirects followed,
no proxies from the environment (a proxy would hide the address the guard checks), and, unless
``NOTIFY_WEBHOOK_ALLOW_PRIVATE``, the address guard of ``addresses`` on every new connection.
Of the answer's body at most ``RESPONSE_LIMIT`` bytes are read; the rest is never downloaded.
Every outcome — 2xx, a redirect, 4xx, 5xx, a timeout, a refused or failed connection — comes
back as an ``Answer``; nothing is raised for the endpoint's behaviour.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError

from notifications.webhooks.addresses import GUARDED_POOLS, RefusedAddress

RESPONSE_LIMIT = 1024  # bytes of an answer kept
USER_AGENT = "notification-service-webhooks/1.0 (+https://www.standardwebhooks.com)"


@dataclass(frozen=True)
class Answer:
    """What one post came to: ``outcome`` (a ``WebhookAttempt.Outcome`` value), the status
    code if the endpoint answered, the time to its answer, the first 1 KB of the body and the
    error (for a redirect, where it pointed)."""

    outcome: str
    status_code: int | None
    duration_ms: int
    response: str
    error: str

    @property
    def ok(self) -> bool:
        return self.outcome == "success"


class GuardedAdapter(HTTPAdapter):
    """``HTTPAdapter`` whose connections check the address they reached (``addresses``)."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(GUARDED_POOLS)


def new_session(guarded: bool = True) -> requests.Session:
    """A session for one lane thread (with the address guard unless ``guarded`` is False)."""
    session = requests.Session()
    session.trust_env = False  # no proxy between us and the address the guard checks
    session.headers.update({"User-Agent": USER_AGENT, "Content-Type": "application/json"})
    if guarded:
        for prefix in ("http://", "https://"):
            session.mount(prefix, GuardedAdapter())
    return session


def _kind(status: int) -> str:
    if 200 <= status < 300:
        return "success"
    if 300 <= status < 400:
        return "redirect"
    if 400 <= status < 500:
        return "client_error"
    return "server_error"


def _refusal(err: requests.ConnectionError) -> RefusedAddress | None:
    """The guard's refusal inside a connection error, if that is what it was."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, RefusedAddress):
            return current
        reason = getattr(current, "reason", None)
        nested = current.args[0] if current.args else None
        current = reason if isinstance(reason, BaseException) else nested
        if not isinstance(current, BaseException):
            current = None
    return None


def post(session: requests.Session, url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST ``body`` to ``url`` and say what happened (never raises for the endpoint's doing)."""
    timeout = settings.NOTIFY_WEBHOOK_TIMEOUT
    verify: bool | str = os.environ.get("REQUESTS_CA_BUNDLE") or True
    began = time.monotonic()

    def took() -> int:
        return round((time.monotonic() - began) * 1000)

    try:
        with session.post(
            url,
            data=body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
            verify=verify,
        ) as answer:
            kept = answer.raw.read(RESPONSE_LIMIT, decode_content=True) or b""
            duration = took()
            text = kept.decode("utf-8", "replace")
            error = ""
            if answer.is_redirect or 300 <= answer.status_code < 400:
                error = f"HTTP {answer.status_code}: a redirect, not followed"
                if answer.headers.get("Location"):
                    error += f" (to {answer.headers['Location'][:500]})"
            elif answer.status_code >= 400:
                error = f"HTTP {answer.status_code} {answer.reason or ''}".strip()
            return Answer(_kind(answer.status_code), answer.status_code, duration, text, error)
    except (requests.Timeout, ReadTimeoutError, TimeoutError):
        return Answer("timeout", None, took(), "", f"no answer within {timeout:g} s")
    except requests.ConnectionError as err:
        refusal = _refusal(err)
        if refusal is not None:
            why = getattr(refusal, "_message", "") or str(refusal)
            return Answer("refused", None, took(), "", why)
        return Answer("connection_error", None, took(), "", _short(err))
    except Exception as err:  # noqa: BLE001 - a broken answer, a reset socket: the endpoint's
        return Answer("connection_error", None, took(), "", _short(err))


def _short(err: BaseException) -> str:
    """An exception as one line of at most 500 characters."""
    return " ".join(f"{type(err).__name__}: {err}".split())[:500]
