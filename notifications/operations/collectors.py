"""Gauges read from the database at scrape time: the pipeline keeps nothing up to date for
them. Four indexed queries per scrape: the due notifications (on the (status,
next_attempt_at) index), the fresh consumer heartbeats (on seen_at), and the webhook outbox's
backlog: deliveries waiting for enabled endpoints (on their (status, next_attempt_at)) and
events not yet fanned out into deliveries (``marks.unfanned``: on PostgreSQL a partial index
of those, on SQLite the ids above the lane's mark).

The same numbers whichever process is scraped, so alert rules take ``max`` over instances
(docs/operations.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from notifications.models import Notification
from notifications.operations import heartbeat
from notifications.operations.models import ConsumerHeartbeat
from notifications.webhooks import marks
from notifications.webhooks.models import WebhookDelivery

logger = logging.getLogger(__name__)

WAITING = (Notification.Status.QUEUED, Notification.Status.SCHEDULED)


def _families() -> tuple[GaugeMetricFamily, ...]:
    return (
        GaugeMetricFamily(
            "notify_due_notifications",
            "Notifications waiting (queued or scheduled) whose time to be sent has come.",
        ),
        GaugeMetricFamily(
            "notify_oldest_due_notification_age_seconds",
            "How long the longest-waiting due notification has been due (0: none).",
        ),
        GaugeMetricFamily(
            "notify_consumers",
            "Consumer processes whose heartbeat is fresher than NOTIFY_READY_HEARTBEAT_SECONDS.",
        ),
        GaugeMetricFamily(
            "notify_webhook_pending",
            "Webhook events waiting to reach enabled endpoints: not fanned out into "
            "deliveries yet, or their delivery waits to be sent or retried.",
        ),
        GaugeMetricFamily(
            "notify_webhook_oldest_pending_age_seconds",
            "How long the oldest of those has waited since its event (0: none).",
        ),
    )


class DatabaseCollector(Collector):
    """``notify_due_notifications``, ``notify_oldest_due_notification_age_seconds``,
    ``notify_consumers`` and the webhook outbox's ``notify_webhook_pending`` and
    ``notify_webhook_oldest_pending_age_seconds``, queried when scraped. A database that
    does not answer leaves them out of that scrape (logged), rather than failing the scrape."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(_families())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        try:
            due = (
                Notification.objects.filter(status__in=WAITING)
                .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
                .aggregate(n=Count("pk"), oldest=Min("next_attempt_at"))
            )
            alive = ConsumerHeartbeat.objects.filter(seen_at__gt=heartbeat.fresh_since(now)).count()
            waiting = WebhookDelivery.objects.filter(
                status=WebhookDelivery.Status.PENDING, endpoint__enabled=True
            ).aggregate(n=Count("pk"), oldest=Min("event__created_at"))
            unfanned = marks.unfanned().aggregate(n=Count("pk"), oldest=Min("created_at"))
        except DatabaseError as err:
            logger.warning("database gauges left out of this scrape: %s", err)
            return iter(())
        count, age, consumers, webhook_count, webhook_age = _families()
        count.add_metric([], due["n"])
        oldest = due["oldest"]
        age.add_metric([], max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
        consumers.add_metric([], alive)
        webhook_count.add_metric([], waiting["n"] + unfanned["n"])
        waited = min((t for t in (waiting["oldest"], unfanned["oldest"]) if t), default=None)
        webhook_age.add_metric([], max((now - waited).total_seconds(), 0.0) if waited else 0.0)
        return iter((count, age, consumers, webhook_count, webhook_age))
