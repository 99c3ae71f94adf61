"""The channel chain, in process, against the fakes on 127.0.0.1: fallback, the round cap,
split messages resumed, paid sends never repeated, blocks per run, the SMS daily cap.

Each test delivers with ``delivery.deliver_now`` (claim, chain, record) as a worker would,
round after round, and checks statuses, attempts and what each fake received.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from notifications import delivery, pacing, services
from notifications.models import DeliveryAttempt, Notification, SmsDailyCount, UserContact
from notifications.senders.base import Pace
from notifications.senders.sms import next_day_start
from notifications.senders.telegram import BOT_PACE, TelegramSender
from notifications.tests.fixtures import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome
PHONE, DIGITS = "+79161234567", "79161234567"


@pytest.fixture
def chain(settings, telegram, smtp):
    """Telegram and email wired to the fakes; no pacing; rounds due at once."""
    settings.TELEGRAM_BOT_TOKEN = telegram.token
    settings.TELEGRAM_API_URL = telegram.url
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.DEFAULT_FROM_EMAIL = "service@example.com"
    settings.NOTIFY_HTTP_TIMEOUT = 1.0
    settings.EMAIL_TIMEOUT = 2.0
    settings.NOTIFY_MAX_ROUNDS = 3
    settings.NOTIFY_RETRY_BASE_SECONDS = 0
    settings.NOTIFY_RETRY_MAX_SECONDS = 0
    return settings


@pytest.fixture
def sms(chain, sms_env):
    for key, value in sms_env.items():
        if key == "REQUESTS_CA_BUNDLE":
            continue
        if key.endswith("_PORT"):
            value = int(value)
        elif key == "SMPP_TIMEOUT":
            value = float(value)
        setattr(chain, key, value)
    chain.NOTIFY_SMS_DAILY_LIMIT = 1000
    return chain


def create(user, message: str = "Your order has shipped", **kwargs) -> Notification:
    return services.notification_create(user=user, message=message, **kwargs)


def round_now(notification: Notification) -> Notification:
    """One round, as a worker runs it (the retry wait skipped)."""
    Notification.objects.filter(pk=notification.pk, status=Status.QUEUED).update(
        next_attempt_at=timezone.now()
    )
    delivery.deliver_now([notification.pk])
    notification.refresh_from_db()
    return notification


def attempts(notification: Notification) -> list[tuple]:
    return list(
        notification.attempts.order_by("started_at", "id").values_list(
            "round", "channel", "transport", "outcome"
        )
    )


# --- the chain ----------------------------------------------------------------------------------


def test_telegram_first_then_nothing_else(chain, telegram, smtp, make_user):
    n = round_now(create(make_user(email="a@example.com", telegram_chat_id="11")))
    assert (n.status, n.channel, n.rounds) == (Status.SENT, "telegram", 1)
    assert telegram.delivered_to("11") == ["Your order has shipped"]
    assert smtp.received == []
    assert attempts(n) == [(1, "telegram", "telegram", Outcome.SUCCESS)]


def test_channels_of_one_notification_pick_and_order_the_chain(chain, telegram, smtp, make_user):
    user = make_user(email="a@example.com", telegram_chat_id="12")
    n = round_now(create(user, channels=["email", "telegram"]))
    assert n.channel == "email"
    assert telegram.messages == []
    assert [a[1] for a in attempts(n)] == ["email"]


def test_an_unexpected_exception_is_recorded_and_the_chain_goes_on(
    chain, telegram, smtp, make_user, monkeypatch
):
    """Anything a sender raises ends its attempt recorded, never a row stuck in sending."""

    def broken(self, prepared, index):
        raise ValueError("something nobody expected")

    monkeypatch.setattr(TelegramSender, "send_part", broken)
    n = round_now(create(make_user(email="b@example.com", telegram_chat_id="13")))
    assert (n.status, n.channel) == (Status.SENT, "email")
    failed = n.attempts.get(channel="telegram")
    assert failed.outcome == Outcome.TRANSIENT
    assert failed.error == "unexpected ValueError: something nobody expected"


def test_an_unexpected_exception_finding_an_address_is_recorded_and_the_chain_goes_on(
    chain, telegram, smtp, make_user, monkeypatch
):
    """Whatever a sender raises, even before it is called, the round ends recorded."""

    def broken(self, contact):
        raise RuntimeError("the contact's address could not be read")

    monkeypatch.setattr(TelegramSender, "address", broken)
    n = round_now(create(make_user(email="addr@example.com", telegram_chat_id="14")))
    assert (n.status, n.channel) == (Status.SENT, "email")
    failed = n.attempts.get(channel="telegram")
    assert failed.outcome == Outcome.TRANSIENT
    assert failed.error == "unexpected RuntimeError: the contact's address could not be read"


@pytest.mark.parametrize("address", ["a@b.com, c@d.com", "bob@"])
def test_a_bad_account_email_is_a_recorded_permanent_failure(chain, smtp, make_user, address):
    user = make_user(email=address)
    n = round_now(create(user))
    assert n.status == Status.FAILED
    assert n.rounds == 1 and n.lease_expires_at is None
    assert smtp.received == []
    email = n.attempts.get(channel="email")
    assert email.outcome == Outcome.PERMANENT
    assert "is not a valid email address" in email.error
    assert "is not a valid email address" in n.last_error


def test_a_subject_with_a_line_break_that_slipped_past_validation_fails_cleanly(
    chain, smtp, make_user
):
    """notification_create refuses it; a row written by other code still can't loop."""
    user = make_user(email="c@example.com")
    n = Notification.objects.create(
        user=user,
        message="x",
        subject="Hi\r\nBcc: everyone@example.com",
        status=Status.QUEUED,
        next_attempt_at=timezone.now(),
    )
    n = round_now(n)
    assert n.status == Status.FAILED and n.rounds == 1
    assert smtp.received == []
    assert "can't be mailed" in n.attempts.get(channel="email").error


def test_a_user_deleted_mid_send_leaves_no_error_and_no_retry(chain, telegram, make_user):
    telegram.latency = 0.5
    user = make_user(telegram_chat_id="14")
    n = create(user)
    jobs = delivery.claim([n.pk])
    deleting = threading.Thread(target=lambda: (time.sleep(0.2), user.delete()))
    deleting.start()
    decision = delivery.run_to_end(jobs[0])
    deleting.join()
    assert decision.status is None
    assert not Notification.objects.filter(pk=n.pk).exists()
    assert not DeliveryAttempt.objects.filter(notification_id=n.pk).exists()


# --- the round cap --------------------------------------------------------------------------------


def test_transient_rounds_end_failed_at_the_cap(chain, telegram, make_user):
    telegram.mode = "500"
    n = create(make_user(telegram_chat_id="15"))
    for _ in range(3):
        n = round_now(n)
    assert n.status == Status.FAILED and n.rounds == 3
    assert n.last_error.startswith("gave up after 3 rounds")
    assert round_now(n).rounds == 3  # nothing left to claim


def test_the_claim_ends_a_row_with_no_rounds_left(chain, telegram, make_user):
    n = create(make_user(telegram_chat_id="16"))
    Notification.objects.filter(pk=n.pk).update(rounds=3)
    assert delivery.deliver_now([n.pk]) == []
    n.refresh_from_db()
    assert n.status == Status.FAILED
    assert "no rounds left" in n.last_error
    assert telegram.messages == []


# --- split messages -------------------------------------------------------------------------------

LONG = "\n".join(f"line {i} " + "y" * 90 for i in range(100))  # three Telegram parts


def test_a_split_message_resumes_from_its_first_part_not_accepted(chain, telegram, smtp, make_user):
    """Part 2 fails: no email in between, and round 2 sends parts 2 and 3, not 1 again."""
    telegram.queue.extend(["ok", "500"])
    user = make_user(email="d@example.com", telegram_chat_id="17")
    n = round_now(create(user, LONG))
    assert n.status == Status.QUEUED
    assert smtp.received == []  # a partly delivered message never falls through
    first = n.attempts.get(channel="telegram")
    assert first.outcome == Outcome.PARTIAL
    assert first.error.startswith("1 of 3 parts accepted")
    assert n.progress["partial"]["ids"] == [first.provider_message_id]

    n = round_now(n)
    assert (n.status, n.channel) == (Status.SENT, "telegram")
    assert "\n".join(telegram.delivered_to("17")) == LONG  # each part exactly once
    assert len(telegram.delivered_to("17")) == 3
    success = n.attempts.get(outcome=Outcome.SUCCESS)
    assert len(success.provider_message_id.split(",")) == 3
    assert smtp.received == []
    assert n.progress == {}


def test_a_split_message_refused_midway_fails_and_is_not_sent_elsewhere(
    chain, telegram, smtp, make_user
):
    telegram.queue.extend(["ok", "403"])
    user = make_user(email="e@example.com", telegram_chat_id="18")
    n = round_now(create(user, LONG))
    assert n.status == Status.FAILED
    assert n.last_error.startswith("partly delivered via telegram (1 of 3 parts)")
    assert smtp.received == []
    assert len(telegram.delivered_to("18")) == 1


def test_a_rate_limit_between_parts_waits_without_counting_a_round(
    chain, telegram, smtp, make_user
):
    telegram.queue.extend(["ok", "429"])
    telegram.retry_after = 1
    n = round_now(create(make_user(email="f@example.com", telegram_chat_id="19"), LONG))
    assert n.status == Status.QUEUED and n.rounds == 0
    n = round_now(n)
    assert n.status == Status.SENT and n.rounds == 1
    assert len(telegram.delivered_to("19")) == 3
    assert smtp.received == []


class Bookings:
    """``pacing.book_all`` watched: the paces each booking asked for, in order; the first
    comes back ``first_late_by`` seconds in the past, as if its worker had held it that long."""

    def __init__(self, real) -> None:
        self.real = real
        self.asked: list[list[str]] = []
        self.first_late_by = 0.0

    def __call__(self, paces, horizon, tolerance):
        self.asked.append([pace.name for pace in paces])
        booking = self.real(paces, horizon, tolerance)
        if len(self.asked) == 1 and self.first_late_by:
            return dataclasses.replace(booking, at=booking.at - self.first_late_by)
        return booking


@pytest.fixture
def bookings(monkeypatch) -> Bookings:
    watched = Bookings(pacing.book_all)
    monkeypatch.setattr(pacing, "book_all", watched)
    return watched


def test_a_send_late_for_the_bots_slot_books_the_bot_again_and_keeps_its_chats_slot(
    chain, telegram, make_user, bookings
):
    """Issue 19: a worker that comes to its send 30 ms after its slots (a busy machine) is
    too late for the bot's slot at 1,000/s (10 ms) but not for its chat's (1/s: 100 ms). It
    books the bot's pace again, and only it: booking the chat again would put the send a
    second later (the chat's next slot) and spend the chat's slot twice."""
    chain.NOTIFY_TELEGRAM_RATE = 1000.0
    chain.NOTIFY_TELEGRAM_CHAT_RATE = 1.0
    bookings.first_late_by = 0.03
    n = round_now(create(make_user(telegram_chat_id="21")))
    assert n.status == Status.SENT and len(telegram.delivered_to("21")) == 1
    chat = "telegram:chat:21"
    assert bookings.asked == [[chat, BOT_PACE], [BOT_PACE]]
    # The chat's slot was spent once: its next one is a second after the one it sent on.
    nxt = bookings.real([Pace(chat, 1.0)], horizon=10, tolerance=10).at
    assert nxt - n.sent_at.timestamp() < 1.5


def test_a_send_that_waited_for_the_bots_slot_keeps_its_chats_slot(
    chain, telegram, make_user, bookings
):
    """The chat's slot is booked first; the bot's, half a second ahead (others took the slots
    before it), is waited for. When it comes, the chat's slot is half a second past: not
    late (the chat's next slot is still a full second after it), and not booked again."""
    chain.NOTIFY_TELEGRAM_RATE = 2.0  # a bot slot every half second
    chain.NOTIFY_TELEGRAM_CHAT_RATE = 1.0
    bookings.real([Pace(BOT_PACE, 2.0)], horizon=10, tolerance=10)  # the bot's next: +0.5 s
    n = round_now(create(make_user(telegram_chat_id="22")))
    assert n.status == Status.SENT and len(telegram.delivered_to("22")) == 1
    assert bookings.asked == [["telegram:chat:22", BOT_PACE]]


def test_a_long_send_renews_its_lease_and_is_never_claimed_twice(chain, telegram, make_user):
    """Three slow parts outlast the configured lease; the lease is renewed between parts,
    so the sweeper, running all along, never takes the row back."""
    chain.NOTIFY_LEASE_SECONDS = 1
    telegram.latency = 0.6
    n = create(make_user(telegram_chat_id="20"), LONG)
    stop = threading.Event()
    sweeps = []

    def sweeper():
        from notifications.recovery import sweep

        while not stop.is_set():
            sweeps.append(sweep().as_dict())
            time.sleep(0.05)

    thread = threading.Thread(target=sweeper)
    thread.start()
    try:
        n = round_now(n)
    finally:
        stop.set()
        thread.join()
    assert n.status == Status.SENT
    assert len(telegram.delivered_to("20")) == 3
    assert not n.attempts.filter(transport="lease").exists()
    assert sweeps and all(s["lease_expired"] == 0 for s in sweeps)


# --- paid sends -----------------------------------------------------------------------------------


def sms_user(make_user, **fields):
    return make_user(phone=PHONE, **fields)


def test_sms_api_first_with_cost_and_segments(sms, smsaero, sms_smtp, smpp, make_user):
    n = round_now(create(sms_user(make_user), "Ваш код 1234"))
    assert (n.status, n.channel) == (Status.SENT, "sms")
    attempt = n.attempts.get(transport="sms_api")
    assert attempt.cost == Decimal("5.49") and attempt.segments == 1
    assert attempt.provider_message_id == str(smsaero.sent[0]["id"])
    assert sms_smtp.received == [] and smpp.parts == []
    assert SmsDailyCount.objects.get().sent == 1


def test_api_unreachable_falls_through_to_the_gateway(sms, smsaero, sms_smtp, smpp, make_user):
    sms.SMSAERO_API_URL = "https://127.0.0.1:9/v2/"  # nothing listens: nothing was sent
    n = round_now(create(sms_user(make_user)))
    assert n.status == Status.SENT
    assert [a[2:] for a in attempts(n) if a[1] == "sms"] == [
        ("sms_api", Outcome.TRANSIENT),
        ("sms_smtp", Outcome.SUCCESS),
    ]
    assert smpp.parts == []


def test_gateway_refusing_the_recipient_hands_over_to_smpp(sms, smsaero, sms_smtp, smpp, make_user):
    smsaero.mode = "500"
    sms_smtp.handler.refuse_permanently.add(f"{DIGITS}@sms.example.net")
    n = round_now(create(sms_user(make_user), "Ваш код 1234"))
    assert (n.status, n.channel) == (Status.SENT, "sms")
    assert [a[2:] for a in attempts(n) if a[1] == "sms"] == [
        ("sms_api", Outcome.TRANSIENT),
        ("sms_smtp", Outcome.PERMANENT),
        ("sms_smpp", Outcome.SUCCESS),
    ]
    assert smpp.messages() == [(DIGITS, "Ваш код 1234")]


def test_an_invalid_number_ends_the_sms_channel_at_once(sms, smsaero, sms_smtp, smpp, make_user):
    smsaero.per_number[DIGITS] = "invalid_number"
    n = round_now(create(sms_user(make_user)))
    assert n.status == Status.FAILED
    assert [a[2:] for a in attempts(n) if a[1] == "sms"] == [("sms_api", Outcome.PERMANENT)]
    assert sms_smtp.received == [] and smpp.parts == []  # not paid for twice


def test_an_ambiguous_sms_is_never_sent_again(sms, telegram, smsaero, sms_smtp, smpp, make_user):
    """SMS Aero took the message but answered after our timeout. No other gate or
    transport in that round, the day's slot kept, and no later round sends it again, even
    though Telegram's transient failure brings a second round."""
    sms.NOTIFY_HTTP_TIMEOUT = 0.5
    smsaero.mode, smsaero.hang = "timeout", 1.0
    telegram.mode = "500"
    user = sms_user(make_user, telegram_chat_id="21")
    n = round_now(create(user))
    assert n.status == Status.QUEUED
    wait_for(lambda: len(smsaero.sent) == 1, timeout=5, what="the gate to record it")
    assert [a[2:] for a in attempts(n) if a[1] == "sms"] == [("sms_api", Outcome.AMBIGUOUS)]
    assert sms_smtp.received == [] and smpp.parts == []
    assert SmsDailyCount.objects.get().sent == 1

    for _ in range(2):
        n = round_now(n)
    assert n.status == Status.FAILED
    assert len(smsaero.sent) == 1 and sms_smtp.received == [] and smpp.parts == []
    later = n.attempts.filter(channel="sms", round__gt=1)
    assert {a.outcome for a in later} == {Outcome.SKIPPED}
    assert "not sent again so as not to pay twice" in later.first().error


def test_an_smpp_split_sms_resumes_after_its_accepted_parts(sms, smpp, make_user):
    sms.NOTIFY_SMS_TRANSPORTS = ["smpp"]
    smpp.queue.extend(["ok", "syserr"])
    text = "Ваш заказ доставлен. " * 10  # four UCS2 parts
    n = round_now(create(sms_user(make_user), text))
    assert n.status == Status.QUEUED
    assert len(smpp.parts) == 1
    n = round_now(n)
    assert n.status == Status.SENT
    assert smpp.messages() == [(DIGITS, text)]
    assert len(smpp.parts) == 4  # no part twice
    assert SmsDailyCount.objects.get().sent == 1  # one message, one slot


# --- blocks belong to one run ---------------------------------------------------------------------


def test_a_permanent_failure_blocks_the_channel_only_until_the_next_send(
    chain, telegram, smtp, make_user
):
    telegram.per_chat["22"] = "400"
    smtp.handler.refuse_temporarily.add("g@example.com")
    user = make_user(email="g@example.com", telegram_chat_id="22")
    n = create(user)
    for _ in range(3):
        n = round_now(n)
    assert n.status == Status.FAILED
    assert [a[3] for a in attempts(n) if a[1] == "telegram"] == [
        Outcome.PERMANENT,
        Outcome.SKIPPED,
        Outcome.SKIPPED,
    ]
    # The operator fixes the chat id and presses Send: Telegram is tried again at once.
    UserContact.objects.filter(user=user).update(telegram_chat_id="23")
    services.notifications_queue(queryset=Notification.objects.filter(pk=n.pk))
    n = round_now(n)
    assert (n.status, n.channel) == (Status.SENT, "telegram")
    assert telegram.delivered_to("23") == ["Your order has shipped"]


# --- the daily SMS cap ------------------------------------------------------------------------


def test_the_daily_cap_defers_sms_to_the_next_day(sms, smsaero, make_user):
    sms.NOTIFY_SMS_DAILY_LIMIT = 1
    user = sms_user(make_user)
    assert round_now(create(user)).status == Status.SENT
    n = round_now(create(user))
    assert n.status == Status.QUEUED
    assert n.next_attempt_at >= next_day_start()
    sms_attempt = n.attempts.get(channel="sms")
    assert sms_attempt.outcome == Outcome.DEFERRED
    assert "daily SMS limit reached: 1 of 1" in sms_attempt.error
    assert len(smsaero.sent) == 1
    # A new day (here: the operator raises the cap): SMS is not blocked for it.
    sms.NOTIFY_SMS_DAILY_LIMIT = 2
    n = round_now(n)
    assert (n.status, n.channel) == (Status.SENT, "sms")
    assert len(smsaero.sent) == 2


def test_the_daily_cap_can_fail_at_once_instead(sms, smsaero, make_user):
    sms.NOTIFY_SMS_DAILY_LIMIT = 0
    sms.NOTIFY_SMS_LIMIT_POLICY = "fail"
    n = round_now(create(sms_user(make_user)))
    assert n.status == Status.FAILED
    assert "daily SMS limit reached" in n.last_error
    assert smsaero.sent == []


def test_failed_sends_do_not_use_up_the_daily_cap(sms, smsaero, make_user):
    sms.NOTIFY_SMS_DAILY_LIMIT = 1
    sms.NOTIFY_SMS_TRANSPORTS = ["api"]
    smsaero.mode = "reject"
    user = sms_user(make_user)
    assert round_now(create(user)).status == Status.FAILED
    smsaero.mode = "ok"
    assert round_now(create(user)).status == Status.SENT
    assert SmsDailyCount.objects.get().sent == 1


# --- expiry ---------------------------------------------------------------------------------------


def test_a_notification_is_never_delivered_after_it_expires(chain, telegram, make_user):
    telegram.mode = "500"
    n = create(make_user(telegram_chat_id="24"))
    n = round_now(n)
    assert n.status == Status.QUEUED
    Notification.objects.filter(pk=n.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    telegram.mode = "ok"
    n = round_now(n)
    assert n.status == Status.EXPIRED
    assert telegram.messages == []


def test_smpp_throttled_waits_instead_of_falling_through(sms, smpp, smsaero, make_user):
    """A throttled SMSC is our pace, not the recipient's fault: the SMS channel is retried
    later, no other (paid) transport is tried, and the round is not counted."""
    sms.NOTIFY_SMS_TRANSPORTS = ["smpp", "api"]
    smpp.mode = "throttled"
    before = timezone.now()
    n = round_now(create(sms_user(make_user), "Paid, so patient"))
    assert n.status == Status.QUEUED and n.rounds == 0
    assert n.next_attempt_at >= before + timedelta(seconds=5)
    assert [a[1:] for a in attempts(n) if a[1] == "sms"] == [
        ("sms", "sms_smpp", Outcome.RATE_LIMITED)
    ]
    assert smsaero.requests == []
