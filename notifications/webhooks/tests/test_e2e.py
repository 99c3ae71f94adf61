"""End to end: the real consumer (``manage.py run_huey``) delivers notifications through the
fake Telegram and, from its own webhook lane, posts their events to a receiver on 127.0.0.1,
signed (verified with the ``standardwebhooks`` reference library), each once; an endpoint
that never answers holds up no notification."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from notifications.models import Notification
from notifications.operations.tests.scrapes import fetch, value
from notifications.services import notification_create, notifications_cancel
from notifications.tests.fakes.smtp import free_port
from notifications.tests.fixtures import wait_for, wait_for_status
from notifications.webhooks import outbox
from notifications.webhooks.models import WebhookDelivery, WebhookEvent
from notifications.webhooks.tests.receiver import Answer

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

Status = Notification.Status
LANE = {"NOTIFY_WEBHOOK_ALLOW_PRIVATE": "1", "NOTIFY_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2,0.5"}


def lanes_of(consumer_pid: int) -> list[int]:
    """The pids of the webhook lanes a consumer started (found by their command line)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            words = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"run_webhooks" in words and str(consumer_pid).encode() in words:
            found.append(int(proc.name))
    return found


def pending() -> int:
    """Events not fanned out yet, and deliveries not ended."""
    waiting = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).count()
    return waiting + outbox.unfanned().count()


def test_the_consumer_posts_each_status_change_signed_once(
    start_consumer, telegram, make_user, make_endpoint, webhook_receiver
):
    _, secret = make_endpoint(webhook_receiver.url)
    webhook_receiver.answer(Answer(status=503))  # the first post fails, and is retried
    start_consumer(**LANE)
    users = [make_user(telegram_chat_id=str(5000 + n)) for n in range(5)]
    sent = [notification_create(user=user, message=f"order {n}") for n, user in enumerate(users)]
    waiting = notification_create(user=users[0], message="later", queue=False)
    notifications_cancel(queryset=Notification.objects.filter(pk=waiting.pk))
    for notification in sent:
        wait_for_status(notification, Status.SENT)
    wait_for(lambda: WebhookDelivery.objects.count() == 6 and pending() == 0, 60, "6 webhooks")
    payloads = webhook_receiver.verified(secret)
    delivered = [(p["type"], p["data"]["id"]) for p in payloads]
    assert sorted(set(delivered)) == sorted(
        [("notification.sent", n.pk) for n in sent] + [("notification.cancelled", waiting.pk)]
    )
    ids = Counter(r.id for r in webhook_receiver.requests())
    assert len(ids) == 6
    assert sorted(ids.values()) == [1, 1, 1, 1, 1, 2]  # the one answered 503 came again
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}
    for payload in payloads:
        if payload["type"] == "notification.sent":
            assert payload["data"]["channel"] == "telegram"
            assert payload["data"]["sent_at"] is not None


def test_an_endpoint_that_never_answers_holds_up_no_notification(
    start_consumer, telegram, make_user, make_endpoint, webhook_receiver
):
    webhook_receiver.default = Answer(hang=True)
    make_endpoint(webhook_receiver.url)
    start_consumer(workers=2, NOTIFY_WEBHOOK_TIMEOUT="30", NOTIFY_WEBHOOK_THREADS="2", **LANE)
    users = [make_user(telegram_chat_id=str(7000 + n)) for n in range(20)]
    created = [notification_create(user=user, message=f"n{n}") for n, user in enumerate(users)]
    for notification in created:
        wait_for_status(notification, Status.SENT)
    # Every notification went out while the endpoint answered nothing at all.
    assert not WebhookDelivery.objects.filter(status=WebhookDelivery.Status.SUCCEEDED).exists()
    assert WebhookEvent.objects.count() == 20  # each written as its notification was sent
    assert len(telegram.delivered_to("7000")) == 1


def test_two_consumers_post_each_webhook_once(
    start_consumer, telegram, make_user, make_endpoint, webhook_receiver
):
    _, secret = make_endpoint(webhook_receiver.url, event_types=["notification.sent"])
    start_consumer(workers=2, **LANE)
    start_consumer(workers=2, **LANE)
    users = [make_user(telegram_chat_id=str(9000 + n)) for n in range(30)]
    created = [notification_create(user=user, message=f"n{n}") for n, user in enumerate(users)]
    for notification in created:
        wait_for_status(notification, Status.SENT)
    wait_for(lambda: WebhookDelivery.objects.count() == 30 and pending() == 0, 60, "30 webhooks")
    ids = Counter(r.id for r in webhook_receiver.requests())
    assert len(ids) == 30 and set(ids.values()) == {1}
    assert sorted(p["data"]["id"] for p in webhook_receiver.verified(secret)) == sorted(
        n.pk for n in created
    )


def test_the_lane_yields_the_cpu_counts_in_the_consumers_metrics_and_dies_with_it(
    start_consumer, telegram, make_user, make_endpoint, webhook_receiver
):
    """Issue 17: webhooks are never in the way of delivery. The lane runs
    ``NOTIFY_WEBHOOK_NICE`` below its consumer, reports its posts to the consumer's metrics
    (in batches), and goes when the consumer is killed."""
    make_endpoint(webhook_receiver.url)
    port = free_port()
    consumer = start_consumer(
        NOTIFY_METRICS_PORT=str(port),
        NOTIFY_METRICS_TOKEN="lane-token-0123456789",
        NOTIFY_WEBHOOK_NICE="7",
        **LANE,
    ).wait_started()
    [lane] = wait_for(lambda: lanes_of(consumer.pid), 30, "the consumer's webhook lane")
    wait_for(
        lambda: (
            os.getpriority(os.PRIO_PROCESS, lane)
            == min(os.getpriority(os.PRIO_PROCESS, consumer.pid) + 7, 19)
        ),
        30,
        "the lane to lower its priority by 7",
    )
    notification = notification_create(user=make_user(telegram_chat_id="4242"), message="hi")
    wait_for_status(notification, Status.SENT)
    wait_for(lambda: pending() == 0 and webhook_receiver.count() == 1, 60, "the webhook")

    def counted() -> str | None:
        status, text = fetch(f"http://127.0.0.1:{port}/metrics", "lane-token-0123456789")
        seen = (
            value(text, "notify_webhook_deliveries_total", outcome="success")
            if status == 200
            else None
        )
        return text if seen == 1 else None

    text = wait_for(counted, 30, "the lane's post counted by its consumer")
    assert value(text, "notify_webhook_delivery_seconds_count") == 1
    consumer.stop(signal.SIGKILL)  # killed outright: no shutdown hook runs
    wait_for(
        lambda: not Path(f"/proc/{lane}").exists() or lanes_of(consumer.pid) == [],
        30,
        "the lane to go with its consumer",
    )
