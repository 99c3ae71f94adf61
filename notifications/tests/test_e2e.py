"""End to end: the real consumer (``manage.py run_huey``) delivers through the fake Telegram,
the real SMTP server and the SMS fakes, falling back Telegram → Email → SMS (API → gateway →
SMPP)."""

from __future__ import annotations

import pytest

from notifications import tasks
from notifications.models import DeliveryAttempt, Notification
from notifications.services import notification_create
from notifications.tests.fixtures import wait_for, wait_for_status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome


def attempts_of(notification: Notification) -> list[tuple[str, str, str]]:
    return list(
        notification.attempts.order_by("started_at", "id").values_list(
            "round", "channel", "outcome"
        )
    )


def test_telegram_delivers(start_consumer, telegram, smtp, make_user):
    start_consumer()
    user = make_user(email="ann@example.com", telegram_chat_id="1001")
    notification = notification_create(user=user, message="Your order has shipped")

    wait_for_status(notification, Status.SENT)

    assert notification.channel == "telegram"
    assert notification.sent_at is not None
    assert notification.rounds == 1
    assert telegram.delivered_to("1001") == ["Your order has shipped"]
    assert smtp.received == []
    attempt = notification.attempts.get()
    assert (attempt.channel, attempt.outcome) == ("telegram", Outcome.SUCCESS)
    assert attempt.provider_message_id.isdigit()
    # Email and SMS were never reached, so nothing is recorded for them.
    assert attempts_of(notification) == [(1, "telegram", Outcome.SUCCESS)]


@pytest.mark.parametrize(
    ("behaviour", "outcome"),
    [("403", Outcome.PERMANENT), ("400", Outcome.PERMANENT), ("500", Outcome.TRANSIENT)],
)
def test_telegram_failure_falls_back_to_email(
    start_consumer, telegram, smtp, make_user, behaviour, outcome
):
    telegram.per_chat["2002"] = behaviour
    start_consumer()
    user = make_user(email="bob@example.com", telegram_chat_id="2002")
    notification = notification_create(user=user, message="Fallback please", subject="Hi")

    wait_for_status(notification, Status.SENT)

    assert notification.channel == "email"
    assert telegram.delivered_to("2002") == []
    assert len(smtp.received) == 1
    mail = smtp.received[0]
    assert mail.rcpt_tos == ["bob@example.com"]
    assert mail.message["Subject"] == "Hi"
    assert mail.body.strip() == "Fallback please"
    assert attempts_of(notification) == [
        (1, "telegram", outcome),
        (1, "email", Outcome.SUCCESS),
    ]
    # Delivered in the first round: nothing left to retry.
    assert notification.rounds == 1
    assert notification.next_attempt_at is None
    email_attempt = notification.attempts.get(channel="email")
    assert email_attempt.provider_message_id == mail.message["Message-ID"]


def test_telegram_timeout_falls_back_to_email_at_once(start_consumer, telegram, smtp, make_user):
    telegram.per_chat["3003"] = "timeout"
    telegram.hang = 2.5  # longer than the consumer's NOTIFY_HTTP_TIMEOUT=1
    start_consumer()
    user = make_user(email="cy@example.com", telegram_chat_id="3003")
    notification = notification_create(user=user, message="Slow bot")

    wait_for_status(notification, Status.SENT)

    assert notification.channel == "email"
    telegram_attempt = notification.attempts.get(channel="telegram")
    assert telegram_attempt.outcome == Outcome.AMBIGUOUS  # Telegram is free: on to email
    assert "did not answer in 1s" in telegram_attempt.error
    assert notification.rounds == 1


def test_email_550_with_no_other_channel_fails(start_consumer, telegram, smtp, make_user):
    smtp.handler.refuse_permanently.add("gone@example.com")
    start_consumer()
    user = make_user(email="gone@example.com")
    notification = notification_create(user=user, message="Nobody home")

    wait_for_status(notification, Status.FAILED)

    assert smtp.received == []
    assert attempts_of(notification) == [
        (1, "telegram", Outcome.SKIPPED),
        (1, "email", Outcome.PERMANENT),
        (1, "sms", Outcome.SKIPPED),
    ]
    email_attempt = notification.attempts.get(channel="email")
    assert "550" in email_attempt.error
    assert "550" in notification.last_error
    # A permanent failure is not retried: one round, one email try.
    assert notification.rounds == 1


def test_user_without_contact_fails_with_reason(start_consumer, telegram, smtp, make_user):
    start_consumer()
    user = make_user()  # no chat id, no email, no phone
    notification = notification_create(user=user, message="Anyone?")

    wait_for_status(notification, Status.FAILED)

    assert notification.last_error.startswith("no usable contact")
    assert "no Telegram chat id" in notification.last_error
    assert "no email address" in notification.last_error
    assert set(notification.attempts.values_list("outcome", flat=True)) == {Outcome.SKIPPED}


def test_all_transient_retries_then_sends_when_provider_recovers(
    start_consumer, telegram, smtp, make_user
):
    # Round 1: Telegram 500, SMTP 451. Round 2: Telegram is back.
    telegram.queue.extend(["500"])
    smtp.handler.refuse_temporarily.add("dee@example.com")
    start_consumer()
    user = make_user(email="dee@example.com", telegram_chat_id="4004")
    notification = notification_create(user=user, message="Eventually")

    wait_for(
        lambda: notification.attempts.filter(channel="email").exists(), what="first round to end"
    )
    notification.refresh_from_db()
    assert notification.status in {Status.QUEUED, Status.SENDING, Status.SENT}
    wait_for_status(notification, Status.SENT)

    assert notification.channel == "telegram"
    assert notification.rounds == 2
    assert attempts_of(notification) == [
        (1, "telegram", Outcome.TRANSIENT),
        (1, "email", Outcome.TRANSIENT),
        (1, "sms", Outcome.SKIPPED),
        (2, "telegram", Outcome.SUCCESS),
    ]
    assert telegram.delivered_to("4004") == ["Eventually"]


def test_transient_rounds_exhausted_ends_failed(start_consumer, telegram, smtp, make_user):
    telegram.per_chat["5005"] = "500"
    start_consumer(NOTIFY_MAX_ROUNDS="2")
    user = make_user(telegram_chat_id="5005")
    notification = notification_create(user=user, message="Never")

    wait_for_status(notification, Status.FAILED)

    assert notification.rounds == 2
    assert notification.last_error.startswith("gave up after 2 rounds")
    outcomes = notification.attempts.filter(channel="telegram").values_list("outcome", flat=True)
    assert list(outcomes) == [Outcome.TRANSIENT, Outcome.TRANSIENT]


def test_chat_migrated_to_supergroup_is_followed(start_consumer, telegram, smtp, make_user):
    telegram.per_chat["-6006"] = "migrate:-1006006"
    start_consumer()
    user = make_user(telegram_chat_id="-6006")
    notification = notification_create(user=user, message="Group news")

    wait_for_status(notification, Status.SENT)

    assert telegram.delivered_to("-1006006") == ["Group news"]
    user.contact.refresh_from_db()
    assert user.contact.telegram_chat_id == "-1006006"


def test_long_message_is_split_not_cut(start_consumer, telegram, smtp, make_user):
    start_consumer()
    user = make_user(telegram_chat_id="7007")
    text = ("word " * 1000).strip()  # 4,999 characters
    notification = notification_create(user=user, message=text)

    wait_for_status(notification, Status.SENT)

    parts = telegram.delivered_to("7007")
    assert len(parts) == 2
    assert all(len(p) <= 4096 for p in parts)
    assert " ".join(parts) == text
    assert len(notification.attempts.get().provider_message_id.split(",")) == 2


def test_enqueued_twice_with_two_consumers_is_delivered_once(
    start_consumer, telegram, smtp, make_user
):
    telegram.latency = 0.2  # keep sends in flight while the duplicates arrive
    start_consumer(workers=4, NOTIFY_TELEGRAM_CHAT_RATE="0")
    start_consumer(workers=4, NOTIFY_TELEGRAM_CHAT_RATE="0")
    user = make_user(telegram_chat_id="8008")
    notifications = [notification_create(user=user, message=f"n{i}") for i in range(20)]
    ids = [n.pk for n in notifications]
    tasks.ring(ids)  # every doorbell rung a second and a third time
    tasks.ring(ids)

    for notification in notifications:
        wait_for_status(notification, Status.SENT)

    texts = telegram.delivered_to("8008")
    assert sorted(texts) == sorted(f"n{i}" for i in range(20))
    assert DeliveryAttempt.objects.filter(outcome=Outcome.SUCCESS).count() == 20


def test_secrets_never_reach_attempts_or_errors(start_consumer, telegram, smtp, make_user):
    # Connection refused on a URL that embeds the token: requests puts the URL in its error.
    start_consumer(TELEGRAM_API_URL="http://127.0.0.1:9", EMAIL_HOST_PASSWORD="mail-s3cr3t-pw")
    user = make_user(email="eve@example.com", telegram_chat_id="9009")
    notification = notification_create(user=user, message="Quiet")

    wait_for_status(notification, {Status.SENT, Status.FAILED, Status.QUEUED})
    wait_for(lambda: notification.attempts.exists(), what="attempts")

    telegram_attempt = notification.attempts.get(channel="telegram", round=1)
    assert "unreachable" in telegram_attempt.error
    for text in [*notification.attempts.values_list("error", flat=True), notification.last_error]:
        assert telegram.token not in text
        assert "mail-s3cr3t-pw" not in text


def test_telegram_and_email_failing_ends_sent_by_sms_after_each_transport(
    start_consumer, telegram, smtp, smsaero, sms_smtp, smpp, sms_env, make_user
):
    telegram.per_chat["1111"] = "403"
    smtp.handler.refuse_permanently.add("gone@example.com")
    smsaero.mode = "500"
    sms_smtp.handler.refuse_temporarily.add("79161234567@sms.example.net")
    start_consumer(**sms_env)
    user = make_user(email="gone@example.com", telegram_chat_id="1111", phone="+79161234567")
    text = "Ваш заказ доставлен. " * 10  # 210 characters, Cyrillic: 4 UCS2 parts
    notification = notification_create(user=user, message=text)

    wait_for_status(notification, {Status.SENT, Status.DELIVERED, Status.FAILED})

    # The test SMSC sends its delivery receipts at once: "delivered" may follow "sent".
    assert notification.status in {Status.SENT, Status.DELIVERED}
    assert notification.channel == "sms"
    attempts = list(
        notification.attempts.order_by("started_at", "id").values_list(
            "channel", "transport", "outcome"
        )
    )
    assert attempts == [
        ("telegram", "telegram", Outcome.PERMANENT),
        ("email", "email", Outcome.PERMANENT),
        ("sms", "sms_api", Outcome.TRANSIENT),
        ("sms", "sms_smtp", Outcome.TRANSIENT),
        ("sms", "sms_smpp", Outcome.SUCCESS),
    ]
    assert smpp.messages() == [("79161234567", text)]
    success = notification.attempts.get(outcome=Outcome.SUCCESS)
    assert success.segments == 4
    assert len(success.provider_message_id.split(",")) == 4
    assert smsaero.sent == [] and sms_smtp.received == []
    for error in notification.attempts.values_list("error", flat=True):
        assert smsaero.api_key not in error
        assert sms_smtp.password not in error
