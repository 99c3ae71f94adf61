"""Fixtures of the suppression tests: the email channel on the fake SMTP server, SMS through
the fake email-to-SMS gateway behind it, and the webhook's secret."""

from __future__ import annotations

import pytest

from notifications.suppression.tests import postmark


@pytest.fixture
def mail_chain(settings, smtp, sms_smtp):
    """Email to the fake SMTP server, SMS to the fake gateway (its only transport), no
    Telegram; rounds due at once."""
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.DEFAULT_FROM_EMAIL = "service@example.com"
    settings.NOTIFY_SMS_TRANSPORTS = ["smtp"]
    settings.SMS_SMTP_HOST, settings.SMS_SMTP_PORT = "127.0.0.1", sms_smtp.port
    settings.SMS_SMTP_USER, settings.SMS_SMTP_PASSWORD = sms_smtp.username, sms_smtp.password
    settings.SMS_SMTP_ADDRESS = "{digits}@sms.example.net"
    settings.SMS_SMTP_FROM = "owner@example.com"
    settings.NOTIFY_HTTP_TIMEOUT = 2.0
    settings.NOTIFY_RETRY_BASE_SECONDS = 0
    settings.NOTIFY_RETRY_MAX_SECONDS = 0
    settings.NOTIFY_MAX_ROUNDS = 2
    return settings


@pytest.fixture
def webhook_secret(settings):
    """anymail's WEBHOOK_SECRET, as ANYMAIL_WEBHOOK_SECRET sets it."""
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": postmark.SECRET}
    return postmark.SECRET
