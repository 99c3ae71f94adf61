"""How the operator's pages show the chain's own reasons: translated when the chain, the
senders or the sweeper wrote them (their texts stay English data), as written otherwise."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.utils import translation

from notifications import recovery
from notifications.display import KNOWN_ERRORS, error_text
from notifications.models import SmsDailyCount
from notifications.senders.base import SkipChannel
from notifications.senders.sms import DailyLimitReached, daily_limit_reason, take_daily_slot
from notifications.senders.telegram import TelegramSender


def russian(text: str) -> str:
    with translation.override("ru"):
        return error_text(text)


def test_every_fixed_reason_has_its_russian():
    for text in KNOWN_ERRORS:
        assert russian(text) != text, text
        with translation.override("en"):
            assert error_text(text) == text
    assert russian("no rounds left: 3 used (NOTIFY_MAX_ROUNDS)") == (
        "раунды закончились: использовано 3 (NOTIFY_MAX_ROUNDS)"
    )


def test_the_sweepers_reasons_are_known():
    assert recovery.LEASE_EXPIRED in KNOWN_ERRORS
    assert recovery.LEASE_EXPIRED_LAST in KNOWN_ERRORS


def written_texts() -> set[str]:
    """Every plain string in the modules that write attempts' errors and last errors."""
    package = Path(recovery.__file__).parent
    sources = [
        *(package / name for name in ("delivery.py", "claiming.py", "job.py", "recovery.py")),
        *package.glob("senders/*.py"),
        *package.glob("preferences/*.py"),
    ]
    return {
        node.value
        for source in sources
        for node in ast.walk(ast.parse(source.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_every_known_reason_is_still_written_word_for_word():
    """A reason reworded where it is written would silently show in English: reword it in
    display.KNOWN_ERRORS (and the catalogue) too."""
    assert sorted(set(KNOWN_ERRORS) - written_texts()) == []


@pytest.mark.django_db
def test_the_daily_sms_limit_reasons_as_the_sender_writes_them(settings):
    settings.NOTIFY_SMS_DAILY_LIMIT = 1
    take_daily_slot()
    closed = daily_limit_reason()
    assert russian(closed) == (
        "достигнут дневной лимит SMS: сегодня отправлено 1 из 1 (NOTIFY_SMS_DAILY_LIMIT)"
    )
    with pytest.raises(DailyLimitReached) as refused:
        take_daily_slot()
    assert russian(refused.value.message).startswith("достигнут дневной лимит SMS")
    assert SmsDailyCount.objects.get().sent == 1


def test_the_telegram_senders_skip_reasons_are_known(make_user):
    contact = make_user().contact
    for chat, blocked in (("", False), ("42", True)):
        contact.telegram_chat_id, contact.telegram_blocked = chat, blocked
        with pytest.raises(SkipChannel) as skipped:
            TelegramSender().address(contact)
        assert str(skipped.value) in KNOWN_ERRORS


def test_a_partly_delivered_chain_names_the_channel_in_russian():
    assert russian(
        "the message is partly delivered via sms; it is completed there, not sent again here"
    ) == (
        "сообщение частично доставлено через канал «SMS»; оно будет доотправлено там, а здесь "
        "не отправляется"
    )


def test_anything_else_is_shown_as_it_was_written():
    for text in ("Telegram 403: Forbidden: bot was blocked by the user", "", "opted out!"):
        assert russian(text) == text
