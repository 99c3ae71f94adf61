"""Reads: what the admin, the task layer and the API show or look up. No writes here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from notifications.channels import channel_order, senders_for
from notifications.models import Campaign, DeliveryAttempt, Notification

Status = Notification.Status


def due_ids(now: datetime | None = None) -> list[int]:
    """Ids of waiting notifications that are due now, oldest first."""
    now = now or timezone.now()
    return list(
        Notification.objects.filter(status__in=(Status.QUEUED, Status.SCHEDULED))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)
    )


def count_by_status(queryset: QuerySet[Notification]) -> dict[str, int]:
    """How many rows of ``queryset`` are in each status (one aggregate query)."""
    rows = queryset.order_by().values("status").annotate(n=Count("pk"))
    return {row["status"]: row["n"] for row in rows}


def today_start() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


@dataclass
class SmsToday:
    sent: int
    segments: int
    cost: Decimal | None
    limit: int | None


def sms_today() -> SmsToday:
    """SMS delivered since local midnight, their parts and what they cost."""
    totals = DeliveryAttempt.objects.filter(
        channel="sms",
        outcome=DeliveryAttempt.Outcome.SUCCESS,
        started_at__gte=today_start(),
    ).aggregate(sent=Count("id"), segments=Sum("segments"), cost=Sum("cost"))
    return SmsToday(
        sent=totals["sent"] or 0,
        segments=totals["segments"] or 0,
        cost=totals["cost"],
        limit=settings.NOTIFY_SMS_DAILY_LIMIT,
    )


def channel_status() -> list[dict]:
    """Each channel in chain order with whether its transports are configured."""
    rows = []
    for channel in channel_order():
        transports = [(s.transport, s.is_configured()) for s in senders_for(channel)]
        row = {
            "channel": channel,
            "configured": any(ok for _, ok in transports),
            "transports": transports,
        }
        if channel == "sms":
            row["today"] = sms_today()
        rows.append(row)
    return rows


def stalled_campaign_ids(now: datetime | None = None) -> list[int]:
    """Campaigns still being created whose last chunk is older than
    ``NOTIFY_SWEEP_STALE_SECONDS``: their creation stopped."""
    stale = (now or timezone.now()) - timedelta(seconds=settings.NOTIFY_SWEEP_STALE_SECONDS)
    return list(
        Campaign.objects.filter(state=Campaign.State.CREATING, updated_at__lt=stale)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def users_by_id(ids: list[int]) -> list:
    """The users with these ids (and their contacts), by id."""
    return list(
        get_user_model().objects.filter(pk__in=ids).select_related("contact").order_by("pk")
    )
