"""Senders' error mapping and text handling, against the fakes or one patched HTTP call."""

from __future__ import annotations

import smtplib
from unittest import mock

import pytest
import requests

from notifications.models import Notification, UserContact
from notifications.senders.base import DeliveryError, SkipChannel
from notifications.senders.email import EmailSender, classify_smtp_error
from notifications.senders.telegram import TelegramSender, split_text


@pytest.fixture
def telegram_settings(settings, telegram):
    settings.TELEGRAM_BOT_TOKEN = telegram.token
    settings.TELEGRAM_API_URL = telegram.url
    settings.NOTIFY_HTTP_TIMEOUT = 1
    return settings


@pytest.fixture
def email_settings(settings, smtp):
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp.port
    settings.DEFAULT_FROM_EMAIL = "service@example.com"
    return settings


def contact(**fields) -> UserContact:
    return UserContact(**fields)


def note(message: str = "hello", subject: str = "") -> Notification:
    return Notification(message=message, subject=subject)


@pytest.mark.parametrize(
    ("behaviour", "permanent", "rate_limited", "text"),
    [
        ("400", True, False, "Telegram 400: Bad Request: chat not found"),
        ("403", True, False, "Telegram 403: Forbidden: bot was blocked by the user"),
        ("500", False, False, "Telegram 500: Internal Server Error"),
        ("429", False, True, "Telegram 429: Too Many Requests"),
        ("401", False, False, "configuration error: Telegram rejected the bot token"),
    ],
)
def test_telegram_answers_are_classified(
    telegram_settings, telegram, behaviour, permanent, rate_limited, text
):
    telegram.mode = behaviour
    telegram.retry_after = 7
    with pytest.raises(DeliveryError) as caught:
        TelegramSender().send(contact(telegram_chat_id="42"), note())
    assert caught.value.permanent is permanent
    assert caught.value.rate_limited is rate_limited
    assert caught.value.message.startswith(text)
    if rate_limited:
        assert caught.value.retry_after == 7


def test_telegram_wrong_token_is_a_configuration_error(telegram_settings, telegram):
    telegram_settings.TELEGRAM_BOT_TOKEN = "999:wrong-token"
    with pytest.raises(DeliveryError) as caught:
        TelegramSender().check()
    assert "check TELEGRAM_BOT_TOKEN" in caught.value.message
    assert "999:wrong-token" not in caught.value.message


def test_telegram_check_sends_nothing(telegram_settings, telegram):
    assert TelegramSender().check() == "bot @fake_bot answers"
    assert telegram.messages == []


@pytest.mark.parametrize(
    ("exception", "text"),
    [
        (requests.ConnectTimeout("connect timed out"), "did not answer in time"),
        (requests.ReadTimeout("read timed out"), "did not answer in time"),
        (requests.ConnectionError("refused"), "Telegram unreachable"),
    ],
)
def test_telegram_network_errors_are_transient(settings, exception, text):
    settings.TELEGRAM_BOT_TOKEN = "123:s3cr3t-token"
    with mock.patch("requests.Session.post", side_effect=exception):
        with pytest.raises(DeliveryError) as caught:
            TelegramSender().send(contact(telegram_chat_id="42"), note())
    assert not caught.value.permanent and not caught.value.rate_limited
    assert text in caught.value.message


def test_telegram_error_text_never_carries_the_token(settings):
    settings.TELEGRAM_BOT_TOKEN = "123:s3cr3t-token"
    url_error = requests.ConnectionError(
        "HTTPSConnectionPool(host='api.telegram.org'): Max retries exceeded with url: "
        "/bot123:s3cr3t-token/sendMessage"
    )
    with mock.patch("requests.Session.post", side_effect=url_error):
        with pytest.raises(DeliveryError) as caught:
            TelegramSender().send(contact(telegram_chat_id="42"), note())
    assert "s3cr3t" not in str(caught.value)
    assert "/bot***/sendMessage" in str(caught.value)


def test_telegram_non_json_answer_is_transient(settings):
    settings.TELEGRAM_BOT_TOKEN = "123:abc"
    response = requests.Response()
    response.status_code = 502
    response._content = b"<html>Bad gateway</html>"
    with mock.patch("requests.Session.post", return_value=response):
        with pytest.raises(DeliveryError) as caught:
            TelegramSender().send(contact(telegram_chat_id="42"), note())
    assert not caught.value.permanent
    assert "not a Bot API answer" in caught.value.message


def test_telegram_without_chat_id_is_skipped():
    with pytest.raises(SkipChannel):
        TelegramSender().recipient(contact())


@pytest.mark.parametrize("length", [0, 1, 4096])
def test_split_text_leaves_short_text_whole(length):
    assert split_text("x" * length) == ["x" * length]


def test_split_text_cuts_on_line_breaks_and_loses_nothing():
    lines = [f"line {i} " + "y" * 90 for i in range(100)]
    text = "\n".join(lines)
    parts = split_text(text)
    assert len(parts) == 3
    assert all(len(p) <= 4096 for p in parts)
    assert "\n".join(parts) == text


def test_split_text_cuts_an_unbroken_word_at_the_limit():
    parts = split_text("z" * 9000)
    assert [len(p) for p in parts] == [4096, 4096, 808]


def test_email_delivers_with_subject_and_message_id(email_settings, smtp):
    result = EmailSender().send(
        contact(email="ann@example.com"), note("Body text", subject="Subject line")
    )
    (mail,) = smtp.received
    assert mail.rcpt_tos == ["ann@example.com"]
    assert mail.mail_from == "service@example.com"
    assert mail.message["Subject"] == "Subject line"
    assert result.provider_message_id == mail.message["Message-ID"]


def test_email_subject_defaults_to_setting(email_settings, smtp):
    email_settings.NOTIFY_EMAIL_SUBJECT = "From the shop"
    EmailSender().send(contact(email="ann@example.com"), note("x"))
    assert smtp.received[0].message["Subject"] == "From the shop"


@pytest.mark.parametrize(
    ("refusal", "permanent", "code"),
    [("refuse_permanently", True, "550"), ("refuse_temporarily", False, "451")],
)
def test_email_recipient_refusals_are_classified(email_settings, smtp, refusal, permanent, code):
    getattr(smtp.handler, refusal).add("bad@example.com")
    with pytest.raises(DeliveryError) as caught:
        EmailSender().send(contact(email="bad@example.com"), note())
    assert caught.value.permanent is permanent
    assert code in caught.value.message


def test_email_server_down_is_transient(settings):
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 9  # nothing listens on discard
    settings.EMAIL_TIMEOUT = 1
    with pytest.raises(DeliveryError) as caught:
        EmailSender().send(contact(email="a@example.com"), note())
    assert not caught.value.permanent
    assert "unreachable" in caught.value.message


def test_email_login_refused_is_configuration_error_without_password(settings):
    settings.EMAIL_HOST_PASSWORD = "gmail-app-pw-1234"
    err = classify_smtp_error(
        smtplib.SMTPAuthenticationError(535, b"5.7.8 Username and Password not accepted"),
        "SMTP server smtp.gmail.com",
    )
    assert err.message.startswith("configuration error")
    assert not err.permanent
    assert "gmail-app-pw-1234" not in err.message


def test_email_login_checked_by_check(settings):
    from notifications.tests.fakes.smtp import FakeSmtp

    server = FakeSmtp(username="robot", password="right-pw").start()
    try:
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "robot", "right-pw"
        assert "accepts the login" in EmailSender().check()
        settings.EMAIL_HOST_PASSWORD = "wrong-pw"
        with pytest.raises(DeliveryError) as caught:
            EmailSender().check()
        assert "refused the login" in caught.value.message
        assert server.received == []
    finally:
        server.stop()


@pytest.mark.django_db
def test_email_falls_back_to_the_user_account_address(django_user_model):
    user = django_user_model.objects.create_user("uma", email="uma@example.com")
    assert EmailSender().recipient(user.contact) == "uma@example.com"
    user.contact.email = "work@example.com"
    assert EmailSender().recipient(user.contact) == "work@example.com"
