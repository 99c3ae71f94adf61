"""The Telegram sender: answers classified, text split, against the fake Bot API (or one
patched HTTP call for network errors)."""

from __future__ import annotations

import io

import pytest
import urllib3.exceptions as u3
from urllib3.response import HTTPResponse

from notifications.models import Notification, UserContact
from notifications.senders import http
from notifications.senders.base import ConfigurationError, DeliveryError, SkipChannel
from notifications.senders.telegram import MAX_MESSAGE_LENGTH, TelegramSender, split_text
from notifications.tests.fixtures import send_with


@pytest.fixture
def telegram_settings(settings, telegram):
    settings.TELEGRAM_BOT_TOKEN = telegram.token
    settings.TELEGRAM_API_URL = telegram.url
    settings.NOTIFY_HTTP_TIMEOUT = 1
    return settings


def contact(**fields) -> UserContact:
    return UserContact(**fields)


def note(message: str = "hello") -> Notification:
    return Notification(message=message)


def send(message: str = "hello", chat: str = "42"):
    return send_with(TelegramSender(), note(message), contact(telegram_chat_id=chat))


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
        send()
    assert caught.value.permanent is permanent
    assert caught.value.rate_limited is rate_limited
    assert not caught.value.ambiguous
    assert caught.value.message.startswith(text)
    if rate_limited:
        assert caught.value.retry_after == 7


def test_telegram_wrong_token_is_a_configuration_error(telegram_settings, telegram):
    telegram_settings.TELEGRAM_BOT_TOKEN = "999:wrong-token"
    with pytest.raises(ConfigurationError) as caught:
        TelegramSender().check()
    assert "check TELEGRAM_BOT_TOKEN" in caught.value.message
    assert "999:wrong-token" not in caught.value.message


def test_telegram_check_sends_nothing(telegram_settings, telegram):
    assert TelegramSender().check() == "bot @fake_bot answers"
    assert telegram.messages == []


def _network_errors():
    url = "/bot123:s3cr3t-token/sendMessage"
    return [
        (u3.ConnectTimeoutError(None, "connect timed out"), False, "unreachable"),
        (u3.NewConnectionError(None, "Connection refused"), False, "unreachable"),
        (u3.NameResolutionError("api.telegram.org", None, "no such host"), False, "unreachable"),
        (u3.ReadTimeoutError(None, url, "read timed out"), True, "did not answer in 1s"),
        (
            u3.ProtocolError("Connection aborted.", ConnectionResetError()),
            True,
            "the connection broke after the request was sent",
        ),
    ]


@pytest.mark.parametrize(("exception", "ambiguous", "text"), _network_errors())
def test_telegram_network_errors_before_and_after_sending(
    settings, monkeypatch, exception, ambiguous, text
):
    """Only an error before the request went out means "not sent"; after it, the message
    may have been delivered (ambiguous)."""
    settings.TELEGRAM_BOT_TOKEN = "123:s3cr3t-token"
    settings.NOTIFY_HTTP_TIMEOUT = 1

    def fail(*args, **kwargs):
        raise exception

    monkeypatch.setattr(http, "send_request", fail)
    with pytest.raises(DeliveryError) as caught:
        send()
    assert not caught.value.permanent and not caught.value.rate_limited
    assert caught.value.ambiguous is ambiguous
    assert text in caught.value.message
    assert "s3cr3t" not in caught.value.message


def test_telegram_non_json_answer_is_transient(settings, monkeypatch):
    settings.TELEGRAM_BOT_TOKEN = "123:abc"
    answer = HTTPResponse(
        body=io.BytesIO(b"<html>Bad gateway</html>"), status=502, preload_content=True
    )
    monkeypatch.setattr(http, "send_request", lambda *args, **kwargs: answer)
    with pytest.raises(DeliveryError) as caught:
        send()
    assert not caught.value.permanent
    assert "not a Telegram answer" in caught.value.message


def test_telegram_without_chat_id_is_skipped():
    with pytest.raises(SkipChannel):
        TelegramSender().address(contact())


def test_telegram_long_message_goes_as_parts_in_order(telegram_settings, telegram):
    text = "\n".join(f"line {i} " + "y" * 90 for i in range(100))
    results = send(text, chat="77")
    delivered = telegram.delivered_to("77")
    assert len(delivered) == 3 == len(results)
    assert "\n".join(delivered) == text
    assert all(r.provider_message_id.isdigit() for r in results)


@pytest.mark.parametrize("length", [1, 4096])
def test_split_text_leaves_short_text_whole(length):
    assert split_text("x" * length) == ["x" * length]


def test_split_text_cuts_on_line_breaks_and_loses_nothing():
    lines = [f"line {i} " + "y" * 90 for i in range(100)]
    text = "\n".join(lines)
    parts = split_text(text)
    assert len(parts) == 3
    assert all(len(p) <= MAX_MESSAGE_LENGTH for p in parts)
    assert "\n".join(parts) == text


def test_split_text_cuts_an_unbroken_word_at_the_limit():
    parts = split_text("z" * 9000)
    assert [len(p) for p in parts] == [4096, 4096, 808]


def test_split_text_never_makes_a_blank_part():
    """The Bot API answers 400 to a whitespace-only text: no such part may be produced."""
    text = "a" * 3000 + " " * 3000 + "\n" * 3000 + "b" * 10
    parts = split_text(text)
    assert parts and all(part.strip() for part in parts)
    assert "".join(parts).replace(" ", "").replace("\n", "") == "a" * 3000 + "b" * 10
    assert split_text(" \n\t ") == []


def test_split_text_counts_utf16_units_and_never_cuts_an_emoji():
    """Telegram counts UTF-16 units: an emoji is two, and its halves must stay together."""
    text = "😀" * 3000  # 6,000 units
    parts = split_text(text)
    assert [len(p.encode("utf-16-le")) // 2 for p in parts] == [4096, 1904]
    assert "".join(parts) == text
