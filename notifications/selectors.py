"""Reads: what the admin, the task layer and the API show or look up. No writes here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Left, TruncDay, TruncHour
from django.utils import timezone

from notifications.channels import channel_order, senders_for
from notifications.models import Campaign, DeliveryAttempt, Notification, UserContact

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


# --- a campaign's progress --------------------------------------------------------------------

FINAL = (
    Status.SENT,
    Status.DELIVERED,
    Status.UNDELIVERED,
    Status.FAILED,
    Status.EXPIRED,
    Status.CANCELLED,
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


# --- the dashboard ----------------------------------------------------------------------------

PERIODS = ("today", "7d", "30d")
FAILED_OUTCOMES = (
    DeliveryAttempt.Outcome.PERMANENT,
    DeliveryAttempt.Outcome.TRANSIENT,
    DeliveryAttempt.Outcome.AMBIGUOUS,
)


@dataclass
class ChannelStats:
    channel: str
    sent: int = 0
    delivered: int = 0
    undelivered: int = 0
    attempts_failed: int = 0
    attempts_skipped: int = 0
    p50: timedelta | None = None
    p95: timedelta | None = None

    @property
    def receipt_rate(self) -> float | None:
        """Of those with a receipt, the share delivered."""
        known = self.delivered + self.undelivered
        return self.delivered / known if known else None


@dataclass
class Dashboard:
    period: str
    since: datetime
    now: datetime
    by_status: dict[str, int]
    channels: list[ChannelStats]
    p50: timedelta | None
    p95: timedelta | None
    sms_sent: int
    sms_segments: int
    sms_cost: Decimal | None
    sms_today: SmsToday
    failures: list[dict]
    queue_due: int
    queue_later: int
    sending: int
    oldest_due: datetime | None
    series: list[tuple[datetime, int, int, int]]  # (bucket, reached, not reached, other)
    bucket: str  # "hour" or "day"

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def delivery_rate(self) -> float | None:
        return delivery_rate(self.by_status)

    @property
    def oldest_due_age(self) -> timedelta | None:
        return self.now - self.oldest_due if self.oldest_due else None


def period_start(period: str, now: datetime) -> datetime:
    if period == "7d":
        return now - timedelta(days=7)
    if period == "30d":
        return now - timedelta(days=30)
    return today_start()


def _time_to_send() -> ExpressionWrapper:
    """From when a notification was due (queued, or its send_at) to when it was sent."""
    due = Greatest("queued_at", Coalesce("send_at", "queued_at"))
    return ExpressionWrapper(F("sent_at") - due, output_field=DurationField())


PERCENTILES_SQL = """
SELECT channel, GROUPING(channel),
       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY
         EXTRACT(EPOCH FROM sent_at - GREATEST(queued_at, COALESCE(send_at, queued_at))))
FROM {table}
WHERE created_at >= %s AND sent_at IS NOT NULL AND queued_at IS NOT NULL
GROUP BY GROUPING SETS ((channel), ())
"""


def _percentiles(since: datetime, sent: QuerySet) -> dict[str, tuple]:
    """(p50, p95) of the time to send, per channel and overall (""), as percentile_cont
    computes them."""
    if connection.vendor == "postgresql":
        # One scan, one sort per grouping set (in memory: see dashboard()).
        with connection.cursor() as cursor:
            cursor.execute(PERCENTILES_SQL.format(table=Notification._meta.db_table), [since])
            return {
                "" if overall else channel: tuple(
                    timedelta(seconds=float(v)) if v is not None else None for v in values
                )
                for channel, overall, values in cursor.fetchall()
            }
    # Elsewhere: the value at each rank, read with ORDER BY … LIMIT 2 OFFSET rank (no row is
    # loaded but those two), interpolated as percentile_cont does.
    counts = {row["channel"]: row["n"] for row in sent.values("channel").annotate(n=Count("pk"))}
    result = {}
    for channel, count in [*counts.items(), ("", sum(counts.values()))]:
        rows = sent.filter(channel=channel) if channel else sent
        ordered = (
            rows.annotate(took=_time_to_send()).order_by("took").values_list("took", flat=True)
        )
        values = []
        for fraction in (0.5, 0.95):
            if not count:
                values.append(None)
                continue
            position = fraction * (count - 1)
            low = int(position)
            pair = list(ordered[low : low + 2])
            if not pair:
                values.append(None)
                continue
            high = pair[1] if len(pair) > 1 else pair[0]
            values.append(pair[0] + (high - pair[0]) * (position - low))
        result[channel] = tuple(values)
    return result


def dashboard(period: str = "today", now: datetime | None = None) -> Dashboard:
    """What the channels did in ``period`` (today, 7d, 30d), from a handful of aggregate
    queries: notifications by status, channel and hour or day (one scan); attempts by channel,
    outcome and failure reason (one scan); p50/p95 time to send; the queue (by index)."""
    now = now or timezone.now()
    period = period if period in PERIODS else "today"
    since = period_start(period, now)
    bucket = "hour" if period == "today" else "day"
    if connection.vendor != "postgresql":
        # (No transaction on SQLite: its BEGIN IMMEDIATE would hold the write lock.)
        return _dashboard(period, since, now, bucket)
    with transaction.atomic():
        # The percentiles sort every sent row of the period: in memory, not on disk.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '64MB'")
        return _dashboard(period, since, now, bucket)


def _dashboard(period: str, since: datetime, now: datetime, bucket: str) -> Dashboard:
    created = Notification.objects.filter(created_at__gte=since).order_by()
    trunc = TruncHour if bucket == "hour" else TruncDay

    by_status: dict[str, int] = {}
    channels = {name: ChannelStats(name) for name in settings.CHANNELS}
    series: dict[datetime, list[int]] = {}
    for row in (
        created.annotate(bucket=trunc("created_at"))
        .values("status", "channel", "bucket")
        .annotate(n=Count("pk"))
    ):
        status, n = row["status"], row["n"]
        by_status[status] = by_status.get(status, 0) + n
        counts = series.setdefault(row["bucket"], [0, 0, 0])
        counts[0 if status in REACHED else 1 if status in NOT_REACHED else 2] += n
        stats = channels.get(row["channel"])
        if stats is not None:
            if status in (Status.SENT, Status.DELIVERED, Status.UNDELIVERED):
                stats.sent += n
            if status == Status.DELIVERED:
                stats.delivered += n
            if status == Status.UNDELIVERED:
                stats.undelivered += n

    sms_sent, sms_segments, sms_cost = 0, 0, None
    failures: dict[tuple[str, str], int] = {}
    attempts = DeliveryAttempt.objects.filter(started_at__gte=since).order_by()
    for row in (
        attempts.annotate(
            reason=Case(
                When(outcome__in=FAILED_OUTCOMES, then=Left("error", 200)), default=Value("")
            )
        )
        .values("channel", "outcome", "reason")
        .annotate(n=Count("pk"), segments=Sum("segments"), cost=Sum("cost"))
    ):
        if row["outcome"] in FAILED_OUTCOMES:
            key = (row["channel"], row["reason"])
            failures[key] = failures.get(key, 0) + row["n"]
        stats = channels.get(row["channel"])
        if stats is None:
            continue
        if row["outcome"] in FAILED_OUTCOMES:
            stats.attempts_failed += row["n"]
        elif row["outcome"] == DeliveryAttempt.Outcome.SKIPPED:
            stats.attempts_skipped += row["n"]
        elif row["outcome"] == DeliveryAttempt.Outcome.SUCCESS and row["channel"] == "sms":
            sms_sent += row["n"]
            sms_segments += row["segments"] or 0
            if row["cost"] is not None:
                sms_cost = (sms_cost or Decimal(0)) + row["cost"]
    top = sorted(failures.items(), key=lambda item: (-item[1], item[0][1]))[:8]

    sent = created.filter(sent_at__isnull=False, queued_at__isnull=False)
    percentiles = _percentiles(since, sent)
    for name, stats in channels.items():
        stats.p50, stats.p95 = percentiles.get(name, (None, None))

    waiting = ~Q(status=Status.SENDING)
    queue = Notification.objects.filter(
        status__in=(Status.QUEUED, Status.SCHEDULED, Status.SENDING)
    ).aggregate(
        due=Count("pk", filter=Q(next_attempt_at__lte=now) & waiting),
        later=Count("pk", filter=Q(next_attempt_at__gt=now) & waiting),
        sending=Count("pk", filter=Q(status=Status.SENDING)),
        oldest=Min("next_attempt_at", filter=Q(next_attempt_at__lte=now) & waiting),
    )
    overall = percentiles.get("", (None, None))
    return Dashboard(
        period=period,
        since=since,
        now=now,
        by_status=by_status,
        channels=[channels[name] for name in channel_order() if name in channels],
        p50=overall[0],
        p95=overall[1],
        sms_sent=sms_sent,
        sms_segments=sms_segments,
        sms_cost=sms_cost,
        sms_today=sms_today(),
        failures=[{"channel": c, "reason": r, "n": n} for (c, r), n in top],
        queue_due=queue["due"],
        queue_later=queue["later"],
        sending=queue["sending"],
        oldest_due=queue["oldest"],
        series=[(at, *counts) for at, counts in sorted(series.items())],
        bucket=bucket,
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
