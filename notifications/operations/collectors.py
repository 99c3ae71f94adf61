"""Gauges read from the database at scrape time: the pipeline keeps nothing up to date for
them. Two indexed queries per scrape: the due notifications (on the (status,
next_attempt_at) index) and the fresh consumer heartbeats (on seen_at).

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

logger = logging.getLogger(__name__)

WAITING = (Notification.Status.QUEUED, Notification.Status.SCHEDULED)


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
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
    )


class DatabaseCollector(Collector):
    """``notify_due_notifications``, ``notify_oldest_due_notification_age_seconds`` and
    ``notify_consumers``, queried when scraped. A database that does not answer leaves them
    out of that scrape (logged), rather than failing the scrape."""

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
        except DatabaseError as err:
            logger.warning("database gauges left out of this scrape: %s", err)
            return iter(())
        count, age, consumers = _families()
        count.add_metric([], due["n"])
        oldest = due["oldest"]
        age.add_metric([], max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
        consumers.add_metric([], alive)
        return iter((count, age, consumers))
