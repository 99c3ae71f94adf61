"""Per-client throttling: ``NOTIFY_API_RATE`` requests per period for each API key (and each
staff user), shared by every web process and host.

The limit is a GCRA schedule — the one ``notifications.pacing`` keeps for Telegram, in Redis
when the queue is Redis, else in the database — with a burst of the whole period's requests:
``600/min`` lets a client send 600 at once, then one every 0.1 s. A refused request gets 429
with ``Retry-After`` (whole seconds until the next one would be let through). A per-process
counter would let N web processes allow N times the rate.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from notifications import pacing
from notifications.api.auth import client_of

logger = logging.getLogger("notifications.api")


class ClientRateThrottle(BaseThrottle):
    """DRF throttle with one scope per API key or staff user."""

    def __init__(self) -> None:
        self._wait: float | None = None

    def allow_request(self, request: Request, view) -> bool:
        rate = settings.NOTIFY_API_RATE
        client = client_of(request)
        if rate is None or client is None:
            return True
        requests, seconds = rate
        interval = seconds / requests
        horizon = interval * (requests - 1)
        try:
            booking = pacing.schedule().book_all(
                [f"api:{client}"], [interval], horizon, tolerance=horizon
            )
        except (OperationalError, InterfaceError, RedisError) as err:
            # The request itself needs the database; an unreachable Redis should not stop it.
            logger.warning("API throttling unavailable (%s); request let through", err)
            return True
        if not booking.refused:
            return True
        self._wait = max(booking.at - horizon - time.time(), 0.0)
        return False

    def wait(self) -> float | None:
        return self._wait
