"""Reads: what the admin, the task layer and the API show or look up. No writes here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    Count,
    Q,
    QuerySet,
    Sum,
)
from django.utils import timezone

from notifications.channels import channel_order, senders_for
from notifications.models import (
    Campaign,
    DeliveryAttempt,
    Notification,
    UserContact,
)

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


def day_start(day: date) -> datetime:
    """The local midnight that starts ``day``."""
    return timezone.make_aware(datetime.combine(day, time.min))


def today_start() -> datetime:
    return day_start(timezone.localdate())


@dataclass
class SmsToday:
    sent: int
    segments: int
    cost: Decimal | None
    limit: int | None

    def add(self, sent: int, segments: int, cost: Decimal | None) -> None:
        """Count more SMS in (a cost stays None while every one added is unknown)."""
        self.sent += sent
        self.segments += segments
        if cost is not None:
            self.cost = (self.cost or Decimal(0)) + cost


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


def cancelling_campaigns(now: datetime | None = None) -> list[tuple[int, int]]:
    """(id, cancel cursor) of the campaigns whose "Cancel the rest" stopped midway: a cursor
    left, and no chunk cancelled for ``NOTIFY_SWEEP_STALE_SECONDS``."""
    stale = (now or timezone.now()) - timedelta(seconds=settings.NOTIFY_SWEEP_STALE_SECONDS)
    return list(
        Campaign.objects.filter(cancel_cursor__isnull=False, updated_at__lt=stale)
        .order_by("pk")
        .values_list("pk", "cancel_cursor")
    )


def users_by_id(ids: list[int]) -> list:
    """The users with these ids (and their contacts), by id."""
    return list(
        get_user_model().objects.filter(pk__in=ids).select_related("contact").order_by("pk")
    )


# --- a campaign's progress --------------------------------------------------------------------

FINAL = (
    Status.SENT,
    Status.DELIVERED,
    Status.UNDELIVERED,
    Status.FAILED,
    Status.EXPIRED,
    Status.CANCELLED,
    Status.SUPPRESSED,
)
REACHED = (Status.SENT, Status.DELIVERED)
NOT_REACHED = (Status.UNDELIVERED, Status.FAILED, Status.EXPIRED)


def delivery_rate(by_status: dict[str, int]) -> float | None:
    """Of the notifications that ended (cancelled ones aside), the share that reached the
    recipient (sent, or delivered by a receipt); None before any ended."""
    reached = sum(by_status.get(s, 0) for s in REACHED)
    ended = reached + sum(by_status.get(s, 0) for s in NOT_REACHED)
    return reached / ended if ended else None


@dataclass
class CampaignProgress:
    campaign: Campaign
    by_status: dict[str, int]
    by_channel: dict[str, int]
    sms_sent: int
    sms_segments: int
    sms_cost: Decimal | None

    @property
    def created(self) -> int:
        return sum(self.by_status.values())

    @property
    def expected(self) -> int:
        """How many notifications the campaign will have (the audience less those skipped,
        while it is still being created)."""
        if self.campaign.state == Campaign.State.CREATING:
            return max(self.campaign.audience_size - self.campaign.skipped, self.created)
        return self.created

    @property
    def finished(self) -> int:
        return sum(self.by_status.get(s, 0) for s in FINAL)

    @property
    def done(self) -> bool:
        return self.campaign.state != Campaign.State.CREATING and self.finished >= self.created

    @property
    def cancellable(self) -> bool:
        """Something is left to stop: notifications to create, or not sent yet."""
        return not self.done

    @property
    def percent(self) -> int:
        if self.done:
            return 100
        expected = self.expected
        return min(99, int(100 * self.finished / expected)) if expected else 0

    @property
    def delivery_rate(self) -> float | None:
        return delivery_rate(self.by_status)


def campaign_progress(campaign: Campaign) -> CampaignProgress:
    """Counts by status and channel, and the SMS it took (two aggregate queries)."""
    by_status: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    rows = (
        Notification.objects.filter(campaign=campaign)
        .order_by()
        .values("status", "channel")
        .annotate(n=Count("pk"))
    )
    for row in rows:
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        if row["channel"]:
            by_channel[row["channel"]] = by_channel.get(row["channel"], 0) + row["n"]
    sms = DeliveryAttempt.objects.filter(
        notification__campaign=campaign, channel="sms", outcome=DeliveryAttempt.Outcome.SUCCESS
    ).aggregate(sent=Count("id"), segments=Sum("segments"), cost=Sum("cost"))
    return CampaignProgress(
        campaign=campaign,
        by_status=by_status,
        by_channel=by_channel,
        sms_sent=sms["sent"] or 0,
        sms_segments=sms["segments"] or 0,
        sms_cost=sms["cost"],
    )


def notification_states(ids: list[int]) -> list[Notification]:
    """The current state of these notifications (for the list's live rows)."""
    return list(
        Notification.objects.filter(pk__in=ids[:500]).only(
            "pk", "status", "channel", "sent_at", "rounds", "last_error"
        )
    )


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
    return Notification.objects.select_related("user", "category").filter(pk=pk).first()


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
    that narrows to a few rows has an index that also orders them by creation time. (What
    a list does not show of a notification, its delivery state and rendered texts, is not
    read.)"""
    queryset = Notification.objects.select_related("user", "category").defer("progress", "rendered")
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
