"""The dashboard's numbers: per channel and status for today, 7 or 30 days, failures by
reason, send-time percentiles and the series, read live or from the hourly rollup
(``notifications.rollup``). Reads only, as ``selectors``, whose small reads it uses."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    IntegerField,
    Min,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Greatest, Left, TruncDay, TruncHour
from django.utils import timezone

from notifications.broadcast.services import StarsToday, stars_today
from notifications.channels import channel_order
from notifications.models import (
    DashboardCount,
    DashboardDay,
    DeliveryAttempt,
    Notification,
)
from notifications.reasons import MAX_LENGTH as REASON_LENGTH
from notifications.reasons import reason_of
from notifications.selectors import (
    NOT_REACHED,
    REACHED,
    SmsToday,
    day_start,
    delivery_rate,
)

Status = Notification.Status

# Today is read live. 7 and 30 days are calendar days, today included: each past day before
# yesterday is read from its rollup (``notifications.rollup``, refreshed hourly) when it has
# one, and the rest (yesterday, today, any day not rolled up yet) live, with the same
# queries. So the page costs about two days of rows whatever the period.
#
# Failures are counted by reason (``notifications.reasons``: the error without addresses,
# ids and numbers, stored with each attempt; migration 0014 gave older attempts theirs),
# each with one example of its errors.

PERIODS = ("today", "7d", "30d")
PERIOD_DAYS = {"today": 1, "7d": 7, "30d": 30}
FAILED_OUTCOMES = (
    DeliveryAttempt.Outcome.PERMANENT,
    DeliveryAttempt.Outcome.TRANSIENT,
    DeliveryAttempt.Outcome.AMBIGUOUS,
)
# Time to send over several days: a histogram, 10 buckets a decade from 10 ms up to 10^6 s
# (11.6 days): p50 and p95 read off it are within one bucket (26 %) of the exact value.
# Bucket 0 is under SEND_TIME_EDGES[1], bucket i from SEND_TIME_EDGES[i], the last one
# from 10^6 s on.
SEND_TIME_EDGES = tuple(0.01 * 10 ** (i / 10) for i in range(81))
Kind = DashboardCount.Kind


@dataclass(frozen=True)
class Tally:
    """One grouped count, from a live scan or a rolled-up day (``DashboardCount``)."""

    day: datetime  # the hour or day it counts in
    kind: str
    channel: str
    status: str = ""  # status, or an attempt's outcome
    reason: str = ""  # a failed attempt's reason (notifications.reasons)
    example: str = ""  # one of that reason's errors
    bucket: int | None = None
    n: int = 0
    segments: int = 0
    cost: Decimal | None = None


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
    rolled_until: datetime | None = None  # days before it were read from the rollup
    stars_today: StarsToday | None = None  # Telegram paid broadcast's Stars, against its cap

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def delivery_rate(self) -> float | None:
        return delivery_rate(self.by_status)

    @property
    def oldest_due_age(self) -> timedelta | None:
        return self.now - self.oldest_due if self.oldest_due else None

    @property
    def rolled(self) -> bool:
        """Whether any of its days were read from the rollup."""
        return self.rolled_until is not None and self.rolled_until > self.since


def period_start(period: str, now: datetime | None = None) -> datetime:
    """Local midnight of the period's first day: today, or 6 or 29 days before it."""
    today = timezone.localdate(now)
    return day_start(today - timedelta(days=PERIOD_DAYS.get(period, 1) - 1))


def settled_until(now: datetime | None = None) -> datetime:
    """Days before this (yesterday's local midnight) are rolled up; later ones read live."""
    return day_start(timezone.localdate(now) - timedelta(days=1))


def _time_to_send() -> ExpressionWrapper:
    """From when a notification was due (queued, or its send_at) to when it was sent."""
    due = Greatest("queued_at", Coalesce("send_at", "queued_at"))
    return ExpressionWrapper(F("sent_at") - due, output_field=DurationField())


def _send_time_bucket(low: int = 0, high: int = len(SEND_TIME_EDGES) - 1) -> Case | Value:
    """The bucket of ``took`` among buckets ``low`` to ``high``: a binary search, seven
    comparisons a row rather than one per bucket."""
    if low == high:
        return Value(low)
    middle = (low + high + 1) // 2
    return Case(
        When(
            took__lt=timedelta(seconds=SEND_TIME_EDGES[middle]),
            then=_send_time_bucket(low, middle - 1),
        ),
        default=_send_time_bucket(middle, high),
    )


# On PostgreSQL the scans group by expressions it keeps statistics on (migration 0014:
# CREATE STATISTICS), so that it knows they make a few thousand groups, not a million, and
# aggregates in parallel. A day is ``date_trunc`` in the session's time zone, set to the
# service's for the scans, read as a Unix time (Django reads a timestamp as if the session
# were in UTC); a bucket is computed, not searched. Keep these texts as the statistics
# state them.
PG_DAY_SQL = "date_part('epoch', date_trunc('{unit}', {column}))"
PG_SEND_TIME_BUCKET_SQL = (
    "(CASE WHEN sent_at IS NOT NULL AND queued_at IS NOT NULL THEN LEAST(80, GREATEST(0, "
    "FLOOR(10 * LOG(GREATEST(date_part('epoch', sent_at - GREATEST(queued_at, "
    "COALESCE(send_at, queued_at))), 0.001::float8) / 0.01::float8))))::integer END)"
)


def _day(column: str, hourly: bool) -> RawSQL | TruncDay | TruncHour:
    """The local day (or hour) ``column`` falls in (on PostgreSQL as a Unix time:
    ``_instant``)."""
    if connection.vendor == "postgresql":
        sql = PG_DAY_SQL.format(unit="hour" if hourly else "day", column=column)
        return RawSQL(sql, [], output_field=FloatField())
    return (TruncHour if hourly else TruncDay)(column)


def _instant(day: datetime | float) -> datetime:
    return day if isinstance(day, datetime) else datetime.fromtimestamp(day, UTC)


def _bucket() -> RawSQL | Case:
    """A sent notification's time-to-send bucket; None for one not sent."""
    if connection.vendor == "postgresql":
        return RawSQL(PG_SEND_TIME_BUCKET_SQL, [], output_field=IntegerField())
    sent = Q(sent_at__isnull=False, queued_at__isnull=False)
    return Case(When(sent, then=_send_time_bucket()), default=None)


@contextmanager
def _scanning() -> Iterator[None]:
    """On PostgreSQL, a transaction set for the scans: the service's time zone (for
    ``date_trunc``; the connection's again after them), no JIT compilation (it took longer
    than the scans it was to speed up), and room to aggregate in memory."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('TimeZone', %s, true), set_config('jit', 'off', true), "
            "set_config('work_mem', '64MB', true)",
            [str(timezone.get_current_timezone())],
        )
        yield
        cursor.execute("SELECT set_config('TimeZone', %s, true)", [connection.timezone_name])


def scan(
    since: datetime, until: datetime | None = None, *, hourly: bool = False, send_times: bool = True
) -> list[Tally]:
    """The dashboard's counts of ``[since, until)``, grouped by day (or by hour: the chart
    of today): notifications created by channel and status, with the sent ones by
    time-to-send bucket (one scan); attempts started by channel, outcome and failure reason,
    with an example of each reason (one scan)."""
    created = Notification.objects.filter(created_at__gte=since).order_by()
    attempts = DeliveryAttempt.objects.filter(started_at__gte=since).order_by()
    if until is not None:
        created = created.filter(created_at__lt=until)
        attempts = attempts.filter(started_at__lt=until)
    created = created.annotate(day=_day("created_at", hourly))
    groups = ["day", "channel", "status"]
    if send_times:
        created = created.annotate(took=_time_to_send()).annotate(b=_bucket())
        groups.append("b")
    failed = Q(outcome__in=FAILED_OUTCOMES)
    attempts = (
        attempts.annotate(
            day=_day("started_at", False),
            key=Case(When(failed, then=F("reason")), default=Value("")),
        )
        .values("day", "channel", "outcome", "key")
        .annotate(
            n=Count("pk"),
            segments=Sum("segments"),
            cost=Sum("cost"),
            example=Min(Case(When(failed, then=Left("error", REASON_LENGTH)))),
        )
    )
    with _scanning():
        created_rows = list(created.values(*groups).annotate(n=Count("pk")))
        attempt_rows = list(attempts)
    tallies = []
    times: dict[tuple[datetime, str, int], int] = {}
    for row in created_rows:
        tallies.append(
            Tally(
                _instant(row["day"]), Kind.NOTIFICATIONS, row["channel"], row["status"], n=row["n"]
            )
        )
        if row.get("b") is not None:
            key = (_instant(row["day"]), row["channel"], row["b"])
            times[key] = times.get(key, 0) + row["n"]
    tallies += [
        Tally(day, Kind.SEND_TIME, channel, bucket=bucket, n=n)
        for (day, channel, bucket), n in times.items()
    ]
    return tallies + by_reason(
        Tally(
            _instant(row["day"]),
            Kind.ATTEMPTS,
            row["channel"],
            row["outcome"],
            reason=row["key"],
            example=row["example"] or "",
            n=row["n"],
            segments=row["segments"] or 0,
            cost=row["cost"],
        )
        for row in attempt_rows
    )


def by_reason(tallies: Iterable[Tally]) -> list[Tally]:
    """``tallies`` with each failure's reason normalized (a day rolled up before reasons
    were counts by the error's text) and those of one reason added up, keeping an
    example."""
    found: dict[tuple, Tally] = {}
    kept = []
    for tally in tallies:
        if tally.kind != Kind.ATTEMPTS or not tally.reason:
            kept.append(tally)
            continue
        reason = reason_of(tally.reason)
        example = tally.example or tally.reason
        key = (tally.day, tally.channel, tally.status, reason)
        seen = found.get(key)
        if seen is None:
            found[key] = replace(tally, reason=reason, example=example)
            continue
        found[key] = replace(
            seen,
            n=seen.n + tally.n,
            segments=seen.segments + tally.segments,
            cost=seen.cost if tally.cost is None else (seen.cost or 0) + tally.cost,
            example=min(seen.example, example),
        )
    return kept + list(found.values())


def rolled_up(since: datetime, until: datetime) -> tuple[datetime, list[Tally]]:
    """The rolled-up days from ``since`` on, up to the first one that has no rollup (or
    ``until``): where they end, and their counts."""
    days = set(
        DashboardDay.objects.filter(day__gte=since, day__lt=until).values_list("day", flat=True)
    )
    end = timezone.localdate(since)
    while day_start(end) < until and day_start(end) in days:
        end += timedelta(days=1)
    rolled_until = min(day_start(end), until)
    if rolled_until <= since:
        return since, []
    rows = DashboardCount.objects.filter(day__day__gte=since, day__day__lt=rolled_until).values(
        "day__day",
        "kind",
        "channel",
        "status",
        "reason",
        "example",
        "bucket",
        "n",
        "segments",
        "cost",
    )
    return rolled_until, by_reason(Tally(row.pop("day__day"), **row) for row in rows)


PERCENTILES_SQL = """
SELECT channel, GROUPING(channel),
       percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (ORDER BY
         EXTRACT(EPOCH FROM sent_at - GREATEST(queued_at, COALESCE(send_at, queued_at))))
FROM {table}
WHERE created_at >= %s AND sent_at IS NOT NULL AND queued_at IS NOT NULL
GROUP BY GROUPING SETS ((channel), ())
"""


def _percentiles(since: datetime) -> dict[str, tuple]:
    """(p50, p95) of the time to send, per channel and overall (""), exactly as
    percentile_cont computes them: for today, whose rows are few."""
    if connection.vendor == "postgresql":
        # One scan, one sort per grouping set (in memory: see dashboard()).
        with connection.cursor() as cursor:
            cursor.execute(PERCENTILES_SQL.format(table=Notification._meta.db_table), [since])
            return {
                # Over no rows at all (a fresh install), the overall set's percentiles are
                # one NULL, not an array of two.
                "" if overall else channel: tuple(
                    timedelta(seconds=float(v)) if v is not None else None
                    for v in values or (None, None)
                )
                for channel, overall, values in cursor.fetchall()
            }
    # Elsewhere: the value at each rank, read with ORDER BY … LIMIT 2 OFFSET rank (no row is
    # loaded but those two), interpolated as percentile_cont does.
    sent = Notification.objects.filter(
        created_at__gte=since, sent_at__isnull=False, queued_at__isnull=False
    ).order_by()
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


def histogram_percentile(counts: dict[int, int], fraction: float) -> timedelta | None:
    """The ``fraction`` percentile of a time-to-send histogram (bucket → count), the way
    percentile_cont computes it (between the values at the two ranks around
    ``fraction × (n − 1)``), each value estimated from its place in its bucket: within one
    bucket of the exact result."""
    total = sum(counts.values())
    if not total:
        return None
    position = fraction * (total - 1)
    low = int(position)
    below, above = _histogram_value(counts, low), _histogram_value(counts, min(low + 1, total - 1))
    return timedelta(seconds=below + (above - below) * (position - low))


def _histogram_value(counts: dict[int, int], rank: int) -> float:
    """The value at ``rank`` (from 0, in order), as the ``n`` values of its bucket spread
    evenly across it (geometrically: the buckets are)."""
    seen, last = 0, len(SEND_TIME_EDGES) - 1
    for bucket in sorted(counts):
        n = counts[bucket]
        if rank < seen + n:
            within = (rank - seen + 0.5) / n
            if bucket >= last:
                return SEND_TIME_EDGES[last]
            if bucket == 0:
                return SEND_TIME_EDGES[1] * within
            low, high = SEND_TIME_EDGES[bucket], SEND_TIME_EDGES[bucket + 1]
            return low * (high / low) ** within
        seen += n
    raise ValueError(f"rank {rank} is past the histogram's {seen} values")


def dashboard(period: str = "today", now: datetime | None = None) -> Dashboard:
    """What the channels did in ``period`` (today, 7d, 30d): the counts of ``scan`` (past
    days from their rollup), p50/p95 time to send, the queue (by index)."""
    now = now or timezone.now()
    period = period if period in PERIODS else "today"
    if connection.vendor != "postgresql":
        # (No transaction on SQLite: its BEGIN IMMEDIATE would hold the write lock.)
        return _dashboard(period, now)
    with transaction.atomic():
        # Today's percentiles sort its sent rows: in memory, not on disk.
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '64MB'")
        return _dashboard(period, now)


def _dashboard(period: str, now: datetime) -> Dashboard:
    since = period_start(period, now)
    hourly = period == "today"
    rolled_until: datetime | None = None
    if hourly:
        tallies = scan(since, hourly=True, send_times=False)
        percentiles = _percentiles(since)
    else:
        rolled_until, tallies = rolled_up(since, settled_until(now))
        tallies += scan(rolled_until)
        times: dict[str, dict[int, int]] = {"": {}}
        for tally in tallies:
            if tally.kind == Kind.SEND_TIME:
                for key in (tally.channel, ""):
                    histogram = times.setdefault(key, {})
                    histogram[tally.bucket] = histogram.get(tally.bucket, 0) + tally.n
        percentiles = {
            key: (histogram_percentile(counts, 0.5), histogram_percentile(counts, 0.95))
            for key, counts in times.items()
        }

    by_status: dict[str, int] = {}
    channels = {name: ChannelStats(name) for name in settings.CHANNELS}
    series: dict[datetime, list[int]] = {}
    period_sms = SmsToday(sent=0, segments=0, cost=None, limit=None)
    # Today's SMS against the daily cap, from the same attempts scan (it always reads today).
    today = period_start("today", now)
    today_sms = SmsToday(sent=0, segments=0, cost=None, limit=settings.NOTIFY_SMS_DAILY_LIMIT)
    failures: dict[tuple[str, str], list] = {}  # (channel, reason) → [n, an example]
    for tally in tallies:
        n, stats = tally.n, channels.get(tally.channel)
        if tally.kind == Kind.NOTIFICATIONS:
            status = tally.status
            by_status[status] = by_status.get(status, 0) + n
            counts = series.setdefault(tally.day, [0, 0, 0])
            counts[0 if status in REACHED else 1 if status in NOT_REACHED else 2] += n
            if stats is not None:
                if status in (Status.SENT, Status.DELIVERED, Status.UNDELIVERED):
                    stats.sent += n
                if status == Status.DELIVERED:
                    stats.delivered += n
                if status == Status.UNDELIVERED:
                    stats.undelivered += n
        elif tally.kind == Kind.ATTEMPTS:
            outcome = tally.status
            if outcome in FAILED_OUTCOMES:
                failure = failures.setdefault((tally.channel, tally.reason), [0, tally.example])
                failure[0] += n
                failure[1] = min(failure[1], tally.example)
            if stats is None:
                continue
            if outcome in FAILED_OUTCOMES:
                stats.attempts_failed += n
            elif outcome == DeliveryAttempt.Outcome.SKIPPED:
                stats.attempts_skipped += n
            elif outcome == DeliveryAttempt.Outcome.SUCCESS and tally.channel == "sms":
                period_sms.add(n, tally.segments, tally.cost)
                if tally.day == today:  # attempts are counted by day: today's is read live
                    today_sms.add(n, tally.segments, tally.cost)
    top = sorted(failures.items(), key=lambda item: (-item[1][0], item[0][1]))[:8]
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
        sms_sent=period_sms.sent,
        sms_segments=period_sms.segments,
        sms_cost=period_sms.cost,
        sms_today=today_sms,
        failures=[
            {"channel": c, "reason": r, "example": example, "n": n} for (c, r), (n, example) in top
        ],
        queue_due=queue["due"],
        queue_later=queue["later"],
        sending=queue["sending"],
        oldest_due=queue["oldest"],
        series=[(at, *counts) for at, counts in sorted(series.items())],
        bucket="hour" if hourly else "day",
        rolled_until=rolled_until,
        stars_today=stars_today(),
    )
