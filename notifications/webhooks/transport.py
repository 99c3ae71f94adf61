"""Posting one webhook: the only code here that touches the network.

One urllib3 pool manager per lane thread (connections kept alive between posts to the same
endpoint), ``NOTIFY_WEBHOOK_TIMEOUT`` for connecting and for each read, no retries of its own,
no redirects followed, no proxy (a proxy would hide the address the guard checks), and, unless
``NOTIFY_WEBHOOK_ALLOW_PRIVATE``, the address guard of ``addresses`` on every new connection.
Certificates are checked against ``REQUESTS_CA_BUNDLE`` if set, else certifi's bundle (as the
providers' calls through ``requests`` do). Of the answer's body at most ``RESPONSE_LIMIT``
bytes are read; the rest is never downloaded (the connection is closed instead). Every
outcome — 2xx, a redirect, 4xx, 5xx, a timeout, a refused or failed connection — comes back as
an ``Answer``; nothing is raised for the endpoint's behaviour.

urllib3 itself, not ``requests`` over it: a post costs the lane half the CPU (about 150 µs
against 330 µs on this machine), and the lane's CPU comes out of the cores that deliver.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from http.client import responses

import certifi
import urllib3
from django.conf import settings
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
)

from notifications.webhooks.addresses import GUARDED_POOLS, RefusedAddress

RESPONSE_LIMIT = 1024  # bytes of an answer kept
USER_AGENT = "notification-service-webhooks/1.0 (+https://www.standardwebhooks.com)"
HEADERS = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
Session = urllib3.PoolManager


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


def new_session(guarded: bool = True) -> Session:
    """A pool manager for one lane thread (with the address guard unless ``guarded`` is
    False); ``close_session`` lets its connections go."""
    manager = urllib3.PoolManager(
        num_pools=32,
        retries=False,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("REQUESTS_CA_BUNDLE") or certifi.where(),
    )
    if guarded:
        manager.pool_classes_by_scheme = dict(GUARDED_POOLS)
    return manager


def close_session(session: Session) -> None:
    session.clear()


def _kind(status: int) -> str:
    if 200 <= status < 300:
        return "success"
    if 300 <= status < 400:
        return "redirect"
    if 400 <= status < 500:
        return "client_error"
    return "server_error"


def post(session: Session, url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST ``body`` to ``url`` and say what happened (never raises for the endpoint's doing)."""
    timeout = settings.NOTIFY_WEBHOOK_TIMEOUT
    began = time.monotonic()

    def took() -> int:
        return round((time.monotonic() - began) * 1000)

    try:
        answer = session.request(
            "POST",
            url,
            body=body,
            headers={**HEADERS, **headers},
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            redirect=False,
            retries=False,
            preload_content=False,
        )
        try:
            kept = answer.read(RESPONSE_LIMIT, decode_content=True) or b""
        finally:
            if answer.length_remaining == 0:
                answer.release_conn()  # read to its end: the connection serves the next post
            else:
                answer.close()  # more than we keep, or of unknown length: never downloaded
        duration = took()
        status = answer.status
        text = kept.decode("utf-8", "replace")
        error = ""
        if 300 <= status < 400:
            error = f"HTTP {status}: a redirect, not followed"
            if answer.headers.get("Location"):
                error += f" (to {answer.headers['Location'][:500]})"
        elif status >= 400:
            error = f"HTTP {status} {answer.reason or responses.get(status, '')}".strip()
        return Answer(_kind(status), status, duration, text, error)
    except RefusedAddress as refusal:
        why = getattr(refusal, "_message", "") or str(refusal)
        return Answer("refused", None, took(), "", why)
    except NewConnectionError as err:  # urllib3 makes it a ConnectTimeoutError: not a timeout
        return Answer("connection_error", None, took(), "", _short(err))
    except (ConnectTimeoutError, ReadTimeoutError, TimeoutError):
        return Answer("timeout", None, took(), "", f"no answer within {timeout:g} s")
    except (HTTPError, OSError) as err:
        return Answer("connection_error", None, took(), "", _short(err))
    except Exception as err:  # noqa: BLE001 - a broken answer, a reset socket: the endpoint's
        return Answer("connection_error", None, took(), "", _short(err))


def _short(err: BaseException) -> str:
    """An exception as one line of at most 500 characters."""
    return " ".join(f"{type(err).__name__}: {err}".split())[:500]
