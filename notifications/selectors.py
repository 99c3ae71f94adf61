"""Reads: what the admin, the task layer and the API show or look up. No writes here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from notifications.channels import channel_order, senders_for
from notifications.models import DeliveryAttempt, Notification, UserContact

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


def users_by_reference(ids: set[int], usernames: set[str]) -> dict[int | str, AbstractBaseUser]:
    """The users with these ids or usernames, in one query: ``{id: user, username: user}``."""
    if not ids and not usernames:
        return {}
    User = get_user_model()
    field = User.USERNAME_FIELD
    found: dict[int | str, AbstractBaseUser] = {}
    for user in User.objects.filter(Q(pk__in=ids) | Q(**{f"{field}__in": usernames})):
        if user.pk in ids:
            found[user.pk] = user
        if user.get_username() in usernames:
            found[user.get_username()] = user
    return found


def contact_of(user_id: int) -> UserContact | None:
    """The contact of user ``user_id`` (an unsaved blank one if the user has none yet), or
    None when there is no such user."""
    contact = UserContact.objects.select_related("user").filter(user_id=user_id).first()
    if contact is not None:
        return contact
    user = get_user_model().objects.filter(pk=user_id).first()
    return UserContact(user=user) if user is not None else None


def notification_get(pk: int) -> Notification | None:
    """One notification with its user, or None."""
    return Notification.objects.select_related("user").filter(pk=pk).first()


def notification_list(
    *,
    user: int | str | None = None,
    statuses: list[str] | None = None,
    channel: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[Notification]:
    """Notifications with their users, filtered: ``user`` by id (int) or username (str), the
    ``statuses`` given, delivered via ``channel``, created in [after, before). Each filter
    that narrows to a few rows has an index that also orders them by creation time."""
    queryset = Notification.objects.select_related("user")
    if isinstance(user, int):
        queryset = queryset.filter(user_id=user)
    elif user is not None:
        # The id first (one indexed lookup): a join would walk the whole table by time.
        found = users_by_reference(set(), {user})
        queryset = queryset.filter(user_id=found[user].pk) if found else queryset.none()
    if statuses:
        queryset = queryset.filter(status__in=statuses)
    if channel:
        queryset = queryset.filter(channel=channel)
    if created_after is not None:
        queryset = queryset.filter(created_at__gte=created_after)
    if created_before is not None:
        queryset = queryset.filter(created_at__lt=created_before)
    return queryset
