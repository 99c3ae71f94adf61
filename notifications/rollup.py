"""The dashboard's rollup: each past day's counts (``statistics.scan``), kept so that the
7- and 30-day dashboards read a few hundred rows instead of every notification of a month.

``refresh`` recomputes every settled day of the 30 before yesterday from the source rows and
replaces what was kept, in one transaction; the task layer runs it hourly, and
``manage.py rollup_dashboard`` on demand. A change to an old notification (a late receipt, a
resend) reaches the 7- and 30-day views at the next refresh; today and yesterday are always
read live.

Retention (``notifications.operations.retention``) deletes rows only of days this rollup has
covered (``covered_until``), and records how far it went (``RetentionWatermark``): a refresh
keeps the days before that as they were rolled up, so the dashboard shows the same numbers
after their rows are gone (and a late change to such a day no longer reaches it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from notifications import selectors, statistics
from notifications.models import DashboardCount, DashboardDay
from notifications.operations.models import RetentionWatermark

LOCK_KEY = 0x6E6F7469  # pg_advisory lock id of the rollup ("noti")
KEPT_DAYS = 30  # the days before yesterday kept: more than the longest period needs


def refresh(now: datetime | None = None) -> dict[str, int]:
    """Roll up the settled days of the last ``KEPT_DAYS``, but those retention may have
    pruned (kept as they are); forget older ones. Returns how many days and counts were
    written."""
    since, until = _window(now or timezone.now())
    # Scanned before the transaction: on SQLite it holds the write lock, which the workers
    # need meanwhile.
    tallies = statistics.scan(since, until)
    computed_at = timezone.now()
    with transaction.atomic():
        if not _lock():
            return {"days": 0, "counts": 0}  # another consumer is writing the same rollup
        # Read after the scan: retention moves it before it deletes, so a day it has not
        # reached yet was scanned whole.
        final: dict[float, int] = {}  # the instant of a day kept as it is → its row
        if pruned_before := RetentionWatermark.pruned_before_now():
            rows = DashboardDay.objects.filter(day__gte=since, day__lt=pruned_before)
            final = {day.timestamp(): pk for pk, day in rows.values_list("pk", "day")}
        days = [day for day in _days(since, until) if day.timestamp() not in final]
        # Every other settled day goes: those past the kept window, and those recomputed.
        DashboardDay.objects.filter(day__lt=until).exclude(pk__in=final.values()).delete()
        kept = DashboardDay.objects.bulk_create(
            DashboardDay(day=day, computed_at=computed_at) for day in days
        )
        by_instant = {row.day.timestamp(): row for row in kept}
        DashboardCount.objects.bulk_create(
            (
                DashboardCount(
                    day=by_instant[tally.day.timestamp()],
                    kind=tally.kind,
                    channel=tally.channel,
                    status=tally.status,
                    reason=tally.reason,
                    example=tally.example,
                    bucket=tally.bucket,
                    n=tally.n,
                    segments=tally.segments,
                    cost=tally.cost,
                )
                for tally in tallies
                if tally.day.timestamp() in by_instant
            ),
            batch_size=1000,
        )
    return {"days": len(days), "counts": sum(t.day.timestamp() in by_instant for t in tallies)}


def covered_until(now: datetime | None = None) -> datetime:
    """Rows dated before this instant may be deleted without changing any dashboard: each of
    their days is past the kept window (no period shows it) or rolled up, up to the first day
    that is not."""
    since, until = _window(now or timezone.now())
    rolled = {
        day.timestamp()
        for day in DashboardDay.objects.filter(day__gte=since, day__lt=until).values_list(
            "day", flat=True
        )
    }
    for day in _days(since, until):
        if day.timestamp() not in rolled:
            return day
    return until


def _window(now: datetime) -> tuple[datetime, datetime]:
    """The days the rollup keeps: ``KEPT_DAYS`` before yesterday, the first to the last."""
    until = statistics.settled_until(now)
    return selectors.day_start(timezone.localdate(until) - timedelta(days=KEPT_DAYS)), until


def _lock() -> bool:
    """On PostgreSQL, this transaction's lock on the rollup: consumers on several hosts each
    run the hourly task, and two writing it at once would collide on the days' unique index.
    (SQLite's write lock already puts them one after the other.)"""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [LOCK_KEY])
        return bool(cursor.fetchone()[0])


def _days(since: datetime, until: datetime) -> list[datetime]:
    day, end = timezone.localdate(since), timezone.localdate(until)
    found = []
    while day < end:
        found.append(selectors.day_start(day))
        day += timedelta(days=1)
    return found
