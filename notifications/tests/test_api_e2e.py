"""End to end through the API with the real consumer: a scheduled notification is not sent
before its time and can be cancelled until then; one that expires is never delivered, also
when it expires while waiting for a retry round."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from notifications.models import DeliveryAttempt, Notification
from notifications.tests.fixtures import Consumer, wait_for, wait_for_status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

URL = "/api/v1/notifications"
Status = Notification.Status


def ready(consumer: Consumer) -> Consumer:
    """``consumer`` once it is taking work (a Django start-up can take seconds)."""
    wait_for(lambda: "consumer started" in consumer.output().lower(), what="the consumer")
    return consumer


def telegram_attempts(notification: Notification) -> list[tuple[int, str]]:
    return list(notification.attempts.filter(channel="telegram").values_list("round", "outcome"))


def test_a_scheduled_notification_is_sent_at_its_time_not_before(
    start_consumer, telegram, make_user, api
):
    start_consumer()
    user = make_user(telegram_chat_id="5005")
    send_at = timezone.now() + timedelta(seconds=3)
    response = api.post(
        URL, {"user": user.pk, "message": "At three", "send_at": send_at.isoformat()}
    )
    assert response.json()["status"] == "scheduled"
    notification = Notification.objects.get(pk=response.json()["id"])

    wait_for_status(notification, Status.SENT)

    attempt = notification.attempts.get()
    assert attempt.outcome == DeliveryAttempt.Outcome.SUCCESS
    assert attempt.started_at >= send_at  # not a moment early
    assert notification.sent_at >= send_at
    assert telegram.delivered_to("5005") == ["At three"]
    body = api.get(f"{URL}/{notification.pk}").json()
    assert (body["status"], body["channel"]) == ("sent", "telegram")
    print(f"scheduled send: {(notification.sent_at - send_at).total_seconds():.2f} s after send_at")


def test_a_scheduled_notification_cancelled_before_its_time_is_never_sent(
    start_consumer, telegram, make_user, api
):
    start_consumer()
    user = make_user(telegram_chat_id="6006")
    send_at = timezone.now() + timedelta(seconds=2)
    created = api.post(URL, {"user": user.pk, "message": "Never", "send_at": send_at.isoformat()})
    pk = created.json()["id"]

    cancelled = api.post(f"{URL}/{pk}/cancel")
    assert cancelled.json()["detail"] == "1 cancelled"

    # Its doorbell still rings at send_at; the worker finds nothing to claim.
    wait_for(lambda: timezone.now() > send_at and HUEY.scheduled_count() == 0, what="send_at")
    wait_for(lambda: HUEY.pending_count() == 0, what="the doorbell to be answered")
    time.sleep(1)
    notification = Notification.objects.get(pk=pk)
    assert notification.status == Status.CANCELLED
    assert not notification.attempts.exists()
    assert telegram.delivered_to("6006") == []


def test_a_retry_that_would_come_after_the_expiry_ends_expired_at_once(
    start_consumer, telegram, make_user, api
):
    telegram.per_chat["7007"] = "500"
    # The next round would come in 15–30 s.
    ready(start_consumer(NOTIFY_RETRY_BASE_SECONDS="30", NOTIFY_RETRY_MAX_SECONDS="60"))
    user = make_user(telegram_chat_id="7007")
    expires_at = timezone.now() + timedelta(seconds=5)
    created = api.post(
        URL, {"user": user.pk, "message": "Soon", "expires_at": expires_at.isoformat()}
    )
    notification = Notification.objects.get(pk=created.json()["id"])

    wait_for_status(notification, Status.EXPIRED)

    assert notification.last_error.startswith("expires before its next round; round 1:")
    assert telegram_attempts(notification) == [(1, "transient")]
    assert telegram.delivered_to("7007") == []


def test_one_that_expires_while_waiting_for_a_retry_ends_expired_and_is_not_sent(
    start_consumer, telegram, make_user, api
):
    """Round 1 fails, the retry is due before the expiry, but no worker comes before it
    (the consumer is down): when one comes, the row ends expired, though Telegram would
    now accept it."""
    telegram.per_chat["8008"] = "500"
    slow_retries = {"NOTIFY_RETRY_BASE_SECONDS": "8", "NOTIFY_RETRY_MAX_SECONDS": "60"}
    consumer = ready(start_consumer(**slow_retries))  # the next round in 4–8 s
    user = make_user(telegram_chat_id="8008")
    expires_at = timezone.now() + timedelta(seconds=10)
    created = api.post(
        URL, {"user": user.pk, "message": "Late", "expires_at": expires_at.isoformat()}
    )
    notification = Notification.objects.get(pk=created.json()["id"])

    wait_for(
        lambda: (
            Notification.objects.filter(pk=notification.pk, status=Status.QUEUED, rounds=1)
            .exclude(next_attempt_at=None)
            .exists()
        ),
        what="round 1 to fail and wait for its retry",
    )
    consumer.stop()
    notification.refresh_from_db()
    assert notification.next_attempt_at < notification.expires_at  # a retry was due in time
    telegram.per_chat["8008"] = "ok"
    wait_for(lambda: timezone.now() > expires_at, timeout=15, what="the expiry")

    start_consumer(**slow_retries)  # its doorbell rings; it can't be claimed any more
    wait_for_status(notification, Status.EXPIRED)

    assert telegram_attempts(notification) == [(1, "transient")]  # no round after expiry
    assert telegram.delivered_to("8008") == []
    assert api.get(f"{URL}/{notification.pk}").json()["status"] == "expired"
