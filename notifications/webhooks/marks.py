"""Which webhook events are fanned out into deliveries, and which wait: on PostgreSQL each
event's ``fanned_out`` flag (a partial index of those waiting); on SQLite, where one writer at
a time commits event ids in order, a high-water mark (``WebhookFanOutMark``). Below the outbox
(``outbox.fan_out`` moves the mark), so that the metrics' collectors read the same answer."""

from __future__ import annotations

from django.db import connection
from django.db.models import BigIntegerField, QuerySet, Subquery
from django.db.models.functions import Coalesce

from notifications.webhooks.models import WebhookDelivery, WebhookEvent, WebhookFanOutMark


def by_mark() -> bool:
    """Whether events are fanned out by ``WebhookFanOutMark`` (SQLite: one writer at a time,
    so ids commit in order), not by each event's ``fanned_out`` (PostgreSQL)."""
    return connection.vendor == "sqlite"


def _mark() -> Coalesce:
    """SQLite: the mark, as an SQL expression. Without its row (a test's flush, or one
    deleted by hand) the last event that has a delivery, or 0, which is where ``fan_out``
    puts it back: no event that waits is skipped, and none that has deliveries gets more."""
    return Coalesce(
        Subquery(WebhookFanOutMark.objects.filter(pk=1).values("last_event_id")[:1]),
        Subquery(WebhookDelivery.objects.order_by("-event_id").values("event_id")[:1]),
        0,
        output_field=BigIntegerField(),
    )


def unfanned() -> QuerySet[WebhookEvent]:
    """The events whose deliveries are not made yet: above the mark on SQLite (a range of
    the primary key), not ``fanned_out`` on PostgreSQL (the partial index)."""
    if by_mark():
        return WebhookEvent.objects.filter(id__gt=_mark())
    return WebhookEvent.objects.filter(fanned_out=False)


def fanned() -> QuerySet[WebhookEvent]:
    """The events whose deliveries are made, for the prune. On SQLite those below the mark:
    the event at it is kept too, so that the table's largest id never falls below the mark
    (a migration that rebuilds the table restarts its AUTOINCREMENT from the largest id)."""
    if by_mark():
        return WebhookEvent.objects.filter(id__lt=_mark())
    return WebhookEvent.objects.filter(fanned_out=True)
