"""Fixtures of the recipients-in-control tests: the delivery chain wired to the fakes."""

from __future__ import annotations

import pytest

from notifications.preferences.defaults import forget_default
from notifications.preferences.tests.topics import make_topics


@pytest.fixture
def chain(settings, telegram, smtp):
    """Telegram and email wired to the fakes; rounds due at once; the default category
    read afresh (an earlier test's flush removed it)."""
    settings.TELEGRAM_BOT_TOKEN = telegram.token
    settings.TELEGRAM_API_URL = telegram.url
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.DEFAULT_FROM_EMAIL = "service@example.com"
    settings.NOTIFY_HTTP_TIMEOUT = 1.0
    settings.NOTIFY_RETRY_BASE_SECONDS = 0
    settings.NOTIFY_RETRY_MAX_SECONDS = 0
    forget_default()
    yield settings
    forget_default()


@pytest.fixture
def topics():
    """Order updates (on by default), Promotions (opt-in), Security (required)."""
    return make_topics()


@pytest.fixture
def ann(make_user):
    return make_user(email="ann@example.com", language="en")
