"""The outbox's triggers: a notification's final status change writes its event, in the same
statement, wherever the change is made; nothing else does. Run on SQLite and on PostgreSQL
(``DATABASE_URL=postgres://…``), whose triggers are written separately."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from notifications import selectors
from notifications.delivery import deliver_now
from notifications.models import Campaign, Notification
from notifications.operations import retention
from notifications.preferences.models import Category
from notifications.services import notification_create, notifications_cancel
from notifications.webhooks import outbox, payloads, triggers
from notifications.webhooks.models import (
    NOTIFICATION_EVENT_STATUSES,
    CampaignWatch,
    WebhookDelivery,
    WebhookEvent,
)
from notifications.webhooks.tests.util import set_status

pytestmark = pytest.mark.django_db
Status = Notification.Status
HOOK = "https://hooks.example.com/notify"


@pytest.fixture
def notification(make_user) -> Notification:
    user = make_user(email="a@example.com")
    return Notification.objects.create(user=user, message="hello", status=Status.SENDING)


def test_the_trigger_statuses_are_the_final_ones():
    assert set(NOTIFICATION_EVENT_STATUSES) == set(selectors.FINAL)
    assert triggers.STATUSES == NOTIFICATION_EVENT_STATUSES
    assert triggers.installed(connection) == set(triggers.PG_TRIGGERS)


def test_no_endpoint_no_event(notification):
    set_status(notification, Status.SENT)
    assert not WebhookEvent.objects.exists()


def test_a_final_change_writes_one_event_fanned_out_to_each_endpoint_that_wants_it(
    notification, make_endpoint
):
    everything, _ = make_endpoint(HOOK)
    failures, _ = make_endpoint(HOOK + "/2", event_types=["notification.failed"])
    off, _ = make_endpoint(HOOK + "/3", enabled=False)
    set_status(notification, Status.SENT, channel="email", sent_at=timezone.now())
    [event] = WebhookEvent.objects.all()
    assert (event.type, event.notification_id) == ("notification.sent", notification.pk)
    assert list(outbox.unfanned()) == [event]  # the lane's part
    assert not WebhookDelivery.objects.exists()
    assert outbox.fan_out() == 1
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.endpoint == everything
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.next_attempt_at <= timezone.now()
    blank = WebhookDelivery()  # every other column as the model makes it
    for name in ("attempts", "lease_expires_at", "finished_at", "last_status_code"):
        assert getattr(delivery, name) == getattr(blank, name)
    assert (delivery.last_response, delivery.last_error, delivery.replay_of) == ("", "", None)
    set_status(notification, Status.FAILED)
    assert outbox.fan_out() == 1 and outbox.fan_out() == 0
    assert set(
        WebhookDelivery.objects.filter(event__type="notification.failed").values_list(
            "endpoint", flat=True
        )
    ) == {everything.pk, failures.pk}
    assert not WebhookDelivery.objects.filter(endpoint=off).exists()


def test_changes_that_are_not_final_or_not_changes_write_nothing(notification, make_endpoint):
    make_endpoint(HOOK)
    for status in (Status.QUEUED, Status.SENDING, Status.SCHEDULED, Status.PENDING):
        set_status(notification, status)
    assert not WebhookEvent.objects.exists()
    set_status(notification, Status.SENT)
    set_status(notification, Status.SENT, last_error="")  # the same status again
    Notification.objects.filter(pk=notification.pk).update(last_error="x")  # not the status
    assert WebhookEvent.objects.count() == 1


def test_the_event_keeps_the_state_of_its_moment_and_versions_grow(notification, make_endpoint):
    category = Category.objects.create(key="orders", name_en="Orders")
    make_endpoint(HOOK)
    sent_at = timezone.now()
    Notification.objects.filter(pk=notification.pk).update(
        category=category, idempotency_key="order-17", channels=["email", "sms"]
    )
    set_status(notification, Status.SENT, channel="sms", sent_at=sent_at, rounds=1)
    set_status(notification, Status.DELIVERED)
    Notification.objects.filter(pk=notification.pk).update(last_error="changed later")
    sent, delivered = WebhookEvent.objects.order_by("id")
    first = payloads.payload(sent)
    assert first["type"] == "notification.sent"
    assert first["data"] == {
        "id": notification.pk,
        "user": notification.user_id,
        "status": "sent",
        "channel": "sms",
        "channels": ["email", "sms"],
        "category": "orders",
        "campaign": None,
        "digest": None,
        "digest_key": "",
        "idempotency_key": "order-17",
        "created_at": payloads.utc_text(notification.created_at),
        "queued_at": None,
        "send_at": None,
        "expires_at": None,
        "next_attempt_at": None,
        "sent_at": payloads.utc_text(sent_at),
        "rounds": 1,
        "last_error": "",
        "version": sent.pk,
    }
    second = payloads.payload(delivered)
    assert second["data"]["status"] == "delivered"
    assert second["data"]["version"] > first["data"]["version"]
    assert payloads.body(sent) == payloads.body(WebhookEvent.objects.get(pk=sent.pk))


def test_bulk_updates_and_rows_created_final_write_one_event_each(make_user, make_endpoint):
    make_endpoint(HOOK)
    user = make_user(email="a@example.com")
    rows = Notification.objects.bulk_create(
        [Notification(user=user, message=f"m{i}", status=Status.QUEUED) for i in range(5)]
    )
    Notification.objects.filter(pk__in=[n.pk for n in rows]).update(status=Status.CANCELLED)
    Notification.objects.create(user=user, message="born final", status=Status.SUPPRESSED)
    assert WebhookEvent.objects.filter(type="notification.cancelled").count() == 5
    assert WebhookEvent.objects.filter(type="notification.suppressed").count() == 1


def test_a_rolled_back_change_leaves_no_event(notification, make_endpoint):
    make_endpoint(HOOK)
    with pytest.raises(RuntimeError), transaction.atomic():
        set_status(notification, Status.SENT)
        raise RuntimeError
    assert not WebhookEvent.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_the_services_changes_write_events_cancel_and_a_round(
    make_user, make_endpoint, settings, telegram
):
    settings.TELEGRAM_BOT_TOKEN = telegram.token
    settings.TELEGRAM_API_URL = telegram.url
    make_endpoint(HOOK)
    user = make_user(telegram_chat_id="1001")
    sent = notification_create(user=user, message="via a round")
    [decision] = deliver_now([sent.pk])
    assert decision.status == Status.SENT
    waiting = notification_create(user=user, message="cancelled", queue=False)
    notifications_cancel(queryset=Notification.objects.filter(pk=waiting.pk))
    assert set(WebhookEvent.objects.values_list("notification_id", "type")) == {
        (sent.pk, "notification.sent"),
        (waiting.pk, "notification.cancelled"),
    }


def test_a_campaign_notification_is_watched_once_when_campaign_finished_is_wanted(
    make_user, make_endpoint
):
    user = make_user(email="a@example.com")
    campaign = Campaign.objects.create(name="Sale", state=Campaign.State.READY)
    rows = [
        Notification.objects.create(user=user, message="m", campaign=campaign, status="sending")
        for _ in range(3)
    ]
    set_status(rows[0], Status.SENT)  # nobody wants campaign.finished yet
    assert not CampaignWatch.objects.exists()
    make_endpoint(HOOK, event_types=["campaign.finished"])
    for row in rows[1:]:
        set_status(row, Status.SENT)
    assert list(CampaignWatch.objects.values_list("campaign_id", flat=True)) == [campaign.pk]
    assert not WebhookEvent.objects.exists()  # nobody wants notification.sent


def test_retention_deletes_old_notifications_without_events_or_failures(
    notification, make_endpoint, settings
):
    make_endpoint(HOOK)
    set_status(notification, Status.SENT)
    long_ago = timezone.now() - timedelta(days=settings.NOTIFY_RETENTION_DAYS + 30)
    Notification.objects.filter(pk=notification.pk).update(created_at=long_ago, sent_at=long_ago)
    events = WebhookEvent.objects.count()
    result = retention.prune(now=timezone.now() + timedelta(days=400), seconds=5)
    assert result.notifications == 1
    assert not Notification.objects.filter(pk=notification.pk).exists()
    assert WebhookEvent.objects.count() == events  # the event outlives it, as it was


def test_triggers_dropped_by_a_table_rebuild_are_put_back_after_migrate():
    triggers.uninstall(connection)
    assert triggers.installed(connection) == set()
    triggers.reinstall(using="default")
    assert triggers.installed(connection) == set(triggers.PG_TRIGGERS)
