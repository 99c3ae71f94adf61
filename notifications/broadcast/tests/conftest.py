"""Fixtures of the paid-broadcast tests: Telegram wired to the fake Bot API on 127.0.0.1, and
campaigns of recipients who each have a Telegram chat of their own."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from notifications import services
from notifications.broadcast import services as broadcast
from notifications.broadcast.tests.helpers import recipients
from notifications.models import Campaign


@pytest.fixture(autouse=True)
def _fresh_broadcast_reads() -> Iterator[None]:
    """Each test reads campaigns' paid broadcast afresh (a process caches it for seconds)."""
    broadcast.forget()
    yield
    broadcast.forget()


@pytest.fixture
def paid_chain(settings, telegram, rung):
    """Telegram alone wired to the fake (email and SMS not configured); rounds due at once."""
    settings.TELEGRAM_BOT_TOKEN = telegram.token
    settings.TELEGRAM_API_URL = telegram.url
    settings.NOTIFY_HTTP_TIMEOUT = 1.0
    settings.NOTIFY_RETRY_BASE_SECONDS = 0
    settings.NOTIFY_RETRY_MAX_SECONDS = 0
    settings.NOTIFY_TELEGRAM_STARS_PER_MESSAGE = Decimal("0.1")
    settings.NOTIFY_TELEGRAM_STARS_DAILY_LIMIT = None
    return settings


@pytest.fixture
def campaign(admin_user, paid_chain) -> Callable[..., Campaign]:
    """``campaign(5, stars="1.5")``: a campaign of ``count`` new recipients with a Telegram
    chat each, queued; paid broadcast with that budget when ``stars`` is given."""
    names = itertools.count(1)

    def make(count: int, *, stars: str | None = None, message: str = "Sale") -> Campaign:
        users = recipients(count, prefix=f"c{next(names)}-")
        return services.campaign_create(
            created_by=admin_user,
            user_ids=[user.pk for user in users],
            message=message,
            channels=["telegram"],
            paid_broadcast=stars is not None,
            stars_budget=Decimal(stars) if stars is not None else None,
        )

    return make
