"""Events go by their own window (``NOTIFY_WEBHOOK_EVENT_DAYS``), counted from their last
delivery's end and never while one waits; the outbox's gauges and counters in a scrape."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Notification
from notifications.operations import metrics
from notifications.operations.tests.scrapes import promtool_problems, value
from notifications.webhooks import outbox
from notifications.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEvent
from notifications.webhooks.services import webhook_endpoint_create
from notifications.webhooks.tests.util import forget_fan_out, set_status

pytestmark = pytest.mark.django_db
HOOK = "https://hooks.example.com/notify"
TOKEN = "scrape-token-0123456789"


@pytest.fixture
def three_events(make_user):
    """Three notification.sent events to one endpoint, their deliveries pending."""
    endpoint, _ = webhook_endpoint_create(url=HOOK)
    user = make_user(email="a@example.com")
    for n in range(3):
        notification = Notification.objects.create(user=user, message=f"m{n}", status="sending")
        set_status(notification, "sent")
    outbox.fan_out()
    return endpoint


def test_events_go_a_window_after_their_deliveries_ended_never_while_one_waits(
    three_events, settings
):
    days = settings.NOTIFY_WEBHOOK_EVENT_DAYS
    long_ago = timezone.now() - timedelta(days=days + 1)
    recently = timezone.now() - timedelta(days=days - 1)
    old_done, recent_done, waiting = WebhookDelivery.objects.order_by("id")
    WebhookEvent.objects.update(created_at=long_ago)
    WebhookDelivery.objects.filter(pk=old_done.pk).update(status="succeeded", finished_at=long_ago)
    WebhookDelivery.objects.filter(pk=recent_done.pk).update(status="failed", finished_at=recently)
    WebhookAttempt.objects.create(
        delivery=old_done, number=1, started_at=long_ago, outcome="success", status_code=200
    )
    fresh = WebhookEvent.objects.create(type="notification.sent", data={}, fanned_out=True)
    fresh.deliveries.create(endpoint=three_events, status="succeeded", finished_at=long_ago)
    assert outbox.first_id_since(timezone.now() - timedelta(days=days)) == fresh.pk
    result = outbox.prune()
    assert (result["events"], result["deliveries"]) == (1, 1)
    assert WebhookEvent.objects.filter(pk=fresh.pk).exists()  # young: kept
    assert set(WebhookDelivery.objects.exclude(event=fresh).values_list("pk", flat=True)) == {
        recent_done.pk,
        waiting.pk,
    }
    assert not WebhookAttempt.objects.exists()


def test_a_disabled_endpoints_backlog_is_given_up_after_the_window(three_events, settings):
    three_events.enabled = False
    three_events.save()
    WebhookDelivery.objects.update(
        created_at=timezone.now() - timedelta(days=settings.NOTIFY_WEBHOOK_EVENT_DAYS + 1)
    )
    assert outbox.prune()["abandoned"] == 3
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"failed"}
    assert "disabled" in WebhookDelivery.objects.first().last_error


def test_the_outbox_gauges_and_counters_in_a_scrape(three_events, client, settings):
    settings.NOTIFY_METRICS_TOKEN = TOKEN
    WebhookEvent.objects.filter(pk=WebhookEvent.objects.order_by("id")[0].pk).update(
        created_at=timezone.now() - timedelta(seconds=120)
    )
    metrics.webhook_attempted("server_error", 0.2)
    metrics.webhook_attempted("success", 0.05)
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert value(text, "notify_webhook_pending") == 3
    assert 120 <= value(text, "notify_webhook_oldest_pending_age_seconds") < 600
    assert value(text, "notify_webhook_deliveries_total", outcome="success") >= 1
    assert value(text, "notify_webhook_delivery_seconds_count") >= 2
    assert promtool_problems("check", "metrics", stdin=text) == ""
    three_events.enabled = False  # a disabled endpoint's backlog is not the outbox's lag
    three_events.save()
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert value(text, "notify_webhook_pending") == 0
    assert value(text, "notify_webhook_oldest_pending_age_seconds") == 0
    forget_fan_out()  # events no lane has taken up yet
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert value(text, "notify_webhook_pending") == 3
    assert value(text, "notify_webhook_oldest_pending_age_seconds") >= 120
