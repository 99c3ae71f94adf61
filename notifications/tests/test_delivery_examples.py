"""Examples of the delivery promises that the property test (``test_delivery_properties``)
holds in general, written out against the fakes on 127.0.0.1:

- a split SMS whose next part may have been taken ends failed, and is never sent again;
- a notification whose ``expires_at`` passes in the middle of a round sends nothing more:
  no further channel, no further part; the parts that went out before are recorded;
- a round cut short by a rate limit decides as the whole round would have: an SMS that waits
  for tomorrow's daily count still waits.

Time passes where a test says so: ``django.utils.timezone.now`` runs ahead of the real clock
by what the test adds, so no test sleeps or asserts a duration.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from notifications import delivery
from notifications.models import DeliveryAttempt, Notification, SmsDailyCount
from notifications.senders.base import PartResult, Prepared
from notifications.senders.sms import next_day_start
from notifications.senders.telegram import TelegramSender
from notifications.tests.fakes.smpp import FakeSmpp
from notifications.tests.fakes.smsaero import FakeSmsAero
from notifications.tests.fakes.smtp import FakeSmtp
from notifications.tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.django_db(transaction=True)

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome
PHONE = "+79161234567"
SPLIT_SMS = "Ваш заказ доставлен. " * 10  # four UCS2 parts
LONG = "\n".join(f"line {i} " + "y" * 90 for i in range(100))  # three Telegram parts


class Clock:
    """``timezone.now`` running ``ahead`` of the real clock."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)
        self.real_now = timezone.now

    def now(self) -> datetime:
        return self.real_now() + self.ahead

    def passes(self, seconds: float) -> None:
        self.ahead += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(timezone, "now", clock.now)
    return clock


@pytest.fixture
def rounds(settings) -> None:
    """Rounds due at once, three at most; no pacing (the test settings)."""
    settings.NOTIFY_MAX_ROUNDS = 3
    settings.NOTIFY_RETRY_BASE_SECONDS = 0
    settings.NOTIFY_RETRY_MAX_SECONDS = 0


@pytest.fixture
def chain(settings, rounds, telegram: FakeTelegram, smtp: FakeSmtp) -> None:
    """Telegram and email wired to their fakes."""
    settings.TELEGRAM_BOT_TOKEN = telegram.token
    settings.TELEGRAM_API_URL = telegram.url
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.DEFAULT_FROM_EMAIL = "service@example.com"
    settings.NOTIFY_HTTP_TIMEOUT = 1.0
    settings.EMAIL_TIMEOUT = 2.0


@pytest.fixture
def smpp_sms(settings, rounds, smpp: FakeSmpp) -> None:
    """SMS through SMPP only, to the fake SMSC, with a daily count that is never reached."""
    settings.SMPP_HOST, settings.SMPP_PORT = "127.0.0.1", smpp.port
    settings.SMPP_SYSTEM_ID, settings.SMPP_PASSWORD = smpp.system_id, smpp.password
    settings.SMPP_SOURCE_ADDR = "NotifySvc"
    settings.SMPP_TIMEOUT = 2.0
    settings.NOTIFY_SMS_TRANSPORTS = ["smpp"]
    settings.NOTIFY_SMS_DAILY_LIMIT = 1000


@pytest.fixture
def time_passes_in_telegram_calls(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    """Each Telegram call takes a minute (whatever it answers)."""
    send_part = TelegramSender.send_part

    def slow_send_part(self: TelegramSender, prepared: Prepared, index: int) -> PartResult:
        try:
            return send_part(self, prepared, index)
        finally:
            clock.passes(60)

    monkeypatch.setattr(TelegramSender, "send_part", slow_send_part)


def queued(user, message: str, **fields) -> Notification:
    return Notification.objects.create(
        user=user, message=message, status=Status.QUEUED, next_attempt_at=timezone.now(), **fields
    )


def round_now(notification: Notification) -> Notification:
    """One round, as a worker runs it (the retry wait skipped)."""
    Notification.objects.filter(pk=notification.pk, status=Status.QUEUED).update(
        next_attempt_at=timezone.now()
    )
    delivery.deliver_now([notification.pk])
    notification.refresh_from_db()
    return notification


def outcomes(notification: Notification) -> list[tuple[str, str]]:
    return list(
        notification.attempts.order_by("started_at", "id").values_list("transport", "outcome")
    )


# --- a split SMS whose next part may have been taken ------------------------------------------


def test_a_split_sms_whose_next_part_may_have_gone_ends_failed_and_is_never_resent(
    smpp_sms, smpp: FakeSmpp, make_user
):
    """Part 1 accepted; the SMSC takes part 2 and drops the connection before it answers.
    Part 2 may have been paid for, and the message can't be completed without sending it
    again: it ends failed now ("stuck"), not queued for a round that would pay twice."""
    smpp.queue.extend(["ok", "accept_then_close"])
    n = queued(make_user(phone=PHONE), SPLIT_SMS, channels=["sms"])
    n = round_now(n)
    assert n.status == Status.FAILED, n.last_error
    assert n.last_error.startswith("partly delivered via sms (1 of 4 parts)")
    assert "outcome is unknown" in n.last_error
    assert outcomes(n) == [("sms_smpp", Outcome.AMBIGUOUS)]
    for _ in range(2):
        n = round_now(n)
    assert len(smpp.parts) == 2  # parts 1 and 2, each once: nothing sent again
    assert SmsDailyCount.objects.get().sent == 1


# --- expiry in the middle of a round -----------------------------------------------------------


def test_a_notification_expiring_mid_round_tries_no_further_channel(
    chain, time_passes_in_telegram_calls, telegram: FakeTelegram, smtp: FakeSmtp, make_user
):
    """Telegram fails for now, and its call outlasts ``expires_at``: email is not tried."""
    telegram.mode = "500"
    user = make_user(email="late@example.com", telegram_chat_id="31")
    n = queued(user, "Sale ends at noon", expires_at=timezone.now() + timedelta(seconds=30))
    n = round_now(n)
    assert n.status == Status.EXPIRED, n.last_error
    assert smtp.received == []
    assert outcomes(n) == [("telegram", Outcome.TRANSIENT)]


def test_a_split_message_expiring_between_its_parts_sends_no_more_parts(
    chain, time_passes_in_telegram_calls, telegram: FakeTelegram, smtp: FakeSmtp, make_user
):
    """Part 1 of 3 went out and took past ``expires_at``: parts 2 and 3 never go, nor email."""
    user = make_user(email="split@example.com", telegram_chat_id="32")
    n = queued(user, LONG, expires_at=timezone.now() + timedelta(seconds=30))
    n = round_now(n)
    assert n.status == Status.EXPIRED, n.last_error
    assert len(telegram.delivered_to("32")) == 1
    assert smtp.received == []


def test_parts_sent_before_an_expiry_are_recorded(
    chain, time_passes_in_telegram_calls, telegram: FakeTelegram, make_user
):
    """Part 1 of 3 went out before ``expires_at`` passed: the round's attempts record it (its
    provider message id), and the reason does not say that nothing was delivered."""
    n = queued(
        make_user(telegram_chat_id="34"), LONG, expires_at=timezone.now() + timedelta(seconds=30)
    )
    n = round_now(n)
    assert n.status == Status.EXPIRED
    [sent] = [str(message["message_id"]) for message in telegram.messages]
    recorded = n.attempts.filter(channel="telegram").values_list("provider_message_id", flat=True)
    assert sent in ",".join(recorded), (sent, list(recorded), n.last_error)
    assert "before it could be delivered" not in n.last_error


# --- a round cut short by a rate limit ---------------------------------------------------------


@pytest.mark.parametrize("rate_limited_first", [False, True], ids=["one_round", "rate_limited"])
def test_sms_deferred_to_tomorrow_still_waits_when_a_rate_limit_splits_the_round(
    settings,
    rounds,
    chain,
    telegram: FakeTelegram,
    smsaero: FakeSmsAero,
    make_user,
    rate_limited_first: bool,
):
    """SMS first, then Telegram. Today's SMS are used up (policy "wait"), and Telegram refuses
    the chat for good: the notification waits for tomorrow's SMS count. A 429 from Telegram
    before its refusal changes nothing (the round goes on after the wait, not counted); the
    resumed round must still know that SMS waits for tomorrow."""
    settings.SMSAERO_EMAIL, settings.SMSAERO_API_KEY = smsaero.email, smsaero.api_key
    settings.SMSAERO_SIGN, settings.SMSAERO_API_URL = "NotifySvc", smsaero.url
    settings.NOTIFY_SMS_TRANSPORTS = ["api"]
    settings.NOTIFY_SMS_DAILY_LIMIT = 0
    settings.NOTIFY_SMS_LIMIT_POLICY = "wait"
    telegram.retry_after = 1
    telegram.queue.extend(["429", "403"] if rate_limited_first else ["403"])
    user = make_user(phone=PHONE, telegram_chat_id="33")
    n = queued(user, "Your code is 1234", channels=["sms", "telegram"])
    n = round_now(n)
    if rate_limited_first:
        assert (n.status, n.rounds) == (Status.QUEUED, 0)
        n = round_now(n)
    assert n.status == Status.QUEUED, n.last_error
    assert n.next_attempt_at >= next_day_start()
    assert n.rounds == 1
    assert smsaero.sent == []
