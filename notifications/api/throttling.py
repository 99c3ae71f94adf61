"""Throttling, shared by every web process and host: ``NOTIFY_API_RATE`` requests per period for
each API key (and each staff user), and ``NOTIFY_API_ANON_RATE`` per client address for
everything else — requests without credentials or with a bad key, the schema and docs pages,
and login attempts of the browsable API (``/api/v1/auth/login/``, counted by
``LoginThrottleMiddleware``). An address that keeps guessing keys or passwords gets 429, not another answer.

The limit is a GCRA schedule — the one ``notifications.pacing`` keeps for Telegram, in Redis
when the queue is Redis, else in the database — with a burst of the whole period's requests:
``600/min`` lets a client send 600 at once, then one every 0.1 s. A refused request gets 429
with ``Retry-After`` (whole seconds until the next one would be let through). A per-process
counter would let N web processes allow N times the rate.

In the database (no Redis), a booking is a write, and a read should not cost one: a web
process books a client's requests a batch at a time — a twentieth of its allowance, at most
100 (``LEASE_SHARE``, ``LEASE_MOST``) — and lets them through from memory until they run out
or a period has passed; a refusal is remembered until the schedule's next slot. So a client
costs one write per batch and none per refused request. The trade-off: the limit stays
shared, but each process may hold up to a batch less one unused (a client spread over N
processes may be refused up to N × that many requests early), and using them late lets up to
that many more through in one period than the schedule alone would. Below 40 requests a
period the batch is one request: exact, a write per request let through. Anonymous requests
are booked one by one everywhere (they guard against guessing keys).

The address is ``REMOTE_ADDR``, or behind a proxy (``DJANGO_BEHIND_PROXY``) the one it puts
last in ``X-Forwarded-For`` (DRF's ``NUM_PROXIES``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from notifications import pacing
from notifications.api.auth import client_of

logger = logging.getLogger("notifications.api")

# A process books a client's requests in the database a batch at a time: this share of the
# allowance, at most LEASE_MOST (see the module's docstring).
LEASE_SHARE = 20
LEASE_MOST = 100


@dataclass
class Lease:
    """What this process holds of one client's allowance at one rate: requests booked and
    not yet used (until ``expires``, monotonic), and a refusal (until ``refused_until``, Unix
    time: the schedule's next slot)."""

    left: int = 0
    expires: float = 0.0
    refused_until: float = 0.0


_leases: dict[tuple[str, tuple[int, float]], Lease] = {}
_leases_lock = threading.Lock()


def _from_lease(key: tuple[str, tuple[int, float]]) -> float | None:
    """Take a request from this process's lease: 0 when one was there, the seconds to wait
    when the schedule refused until later, None when the schedule must be asked."""
    with _leases_lock:
        lease = _leases.get(key)
        if lease is None:
            return None
        wait = lease.refused_until - time.time()
        if wait > 0:
            return wait
        if lease.left > 0 and time.monotonic() < lease.expires:
            lease.left -= 1
            return 0.0
        return None


def _keep_lease(key: tuple[str, tuple[int, float]], left: int, seconds: float) -> None:
    with _leases_lock:
        _leases[key] = Lease(left=left, expires=time.monotonic() + seconds)


def _refused(key: tuple[str, tuple[int, float]], until: float) -> None:
    with _leases_lock:
        _leases.setdefault(key, Lease()).refused_until = until


def address_of(request: HttpRequest | Request) -> str:
    """The client's address, as DRF's throttles read it."""
    return BaseThrottle().get_ident(request)


def wait_for(name: str, rate: tuple[int, float] | None, *, leased: bool = False) -> float | None:
    """Book one request on pace ``name`` at ``rate`` (requests, seconds): None when it may go
    now, else the seconds until one would be let through. ``leased``: in the database, from
    a batch this process booked (see the module's docstring). An unreachable schedule lets
    it go (the request itself needs the database; an unreachable Redis should not stop
    it)."""
    if rate is None:
        return None
    requests, seconds = rate
    interval = seconds / requests
    horizon = interval * (requests - 1)
    schedule = pacing.schedule()
    database = leased and isinstance(schedule, pacing.DatabaseSchedule)
    batch = max(1, min(LEASE_MOST, requests // LEASE_SHARE)) if database else 1
    key = (name, rate)
    if database:
        held = _from_lease(key)
        if held is not None:
            return held or None
    room = horizon - interval * (batch - 1)  # the batch's last request within the horizon
    try:
        booking = schedule.book_all([f"api:{name}"], [interval * batch], room, room)
        if booking.refused and batch > 1:  # less than a batch left: one request
            batch = 1
            booking = schedule.book_all([f"api:{name}"], [interval], horizon, horizon)
    except (OperationalError, InterfaceError, RedisError) as err:
        logger.warning("API throttling unavailable (%s); request let through", err)
        return None
    if booking.refused:
        if database:
            _refused(key, booking.at - horizon)
        return max(booking.at - horizon - time.time(), 0.0)
    if batch > 1:
        _keep_lease(key, batch - 1, seconds)
    return None


def anonymous_wait(request: HttpRequest | Request) -> float | None:
    """Book one request without a valid key or session from the client's address."""
    return wait_for(f"ip:{address_of(request)}", settings.NOTIFY_API_ANON_RATE)


class ClientRateThrottle(BaseThrottle):
    """DRF throttle: one allowance per API key or staff user, one per address for anonymous
    requests that reach it (the public schema and docs)."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view) -> bool:
        client = client_of(request)
        if client is None:
            self._wait = anonymous_wait(request)
        else:
            self._wait = wait_for(client, settings.NOTIFY_API_RATE, leased=True)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class CountsFailedAuthentication:
    """An ``APIView`` mixin: a request refused for want of valid credentials (401, or a
    missing key where the view needs one) costs its address one anonymous request, and past
    ``NOTIFY_API_ANON_RATE`` gets 429 instead."""

    def initial(self, request: Request, *args, **kwargs) -> None:
        try:
            super().initial(request, *args, **kwargs)  # type: ignore[misc]
        except (exceptions.NotAuthenticated, exceptions.AuthenticationFailed):
            wait = anonymous_wait(request)
            if wait is not None:
                raise exceptions.Throttled(wait) from None
            raise


def login_refused(request: HttpRequest) -> HttpResponse | None:
    """A login POST (each counts, failed or not) past the address's allowance: 429."""
    wait = anonymous_wait(request)
    if wait is None:
        return None
    seconds = max(1, math.ceil(wait))
    response = HttpResponse(
        f"Too many login attempts from this address; try again in {seconds} s.\n",
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(seconds)
    return response


class LoginThrottleMiddleware:
    """The browsable API's login (``rest_framework.urls``, mounted by the project at
    ``/api/v1/auth/``): every login POST costs its address one of ``NOTIFY_API_ANON_RATE``,
    failed or not; past the allowance, 429 before Django checks the password."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path == login_path():
            refused = login_refused(request)
            if refused is not None:
                return refused
        return self.get_response(request)


def login_path() -> str | None:
    """Where the browsable API's login form posts, if the project mounts it."""
    try:
        return reverse("rest_framework:login")
    except NoReverseMatch:
        return None
