"""The dashboard's rollup: 7 and 30 days read past days from it and show the same numbers as
a scan of every row; what changed after a refresh shows at the next one; p50 and p95 off
the time-to-send histogram stay within one bucket of the exact values."""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from notifications import rollup, selectors, statistics, tasks
from notifications.models import DashboardCount, DashboardDay, DeliveryAttempt, Notification

pytestmark = pytest.mark.django_db
Status = Notification.Status
BUCKET_RATIO = 10**0.1  # one histogram bucket


def make(user, *, days_ago: int, status: str, channel: str = "", took: float | None = None):
    """A notification created ``days_ago`` local days ago, at local noon (sent ``took``
    seconds after it was queued), with the attempts that got it there."""
    noon = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    created = noon - timedelta(days=days_ago)
    notification = Notification.objects.create(
        user=user,
        message="m",
        status=status,
        channel=channel,
        queued_at=created,
        sent_at=created + timedelta(seconds=took) if took is not None else None,
    )
    Notification.objects.filter(pk=notification.pk).update(created_at=created)
    if status == Status.FAILED:
        DeliveryAttempt.objects.create(
            notification=notification,
            channel="email",
            transport="email",
            outcome="permanent",
            error=f"SMTP 550: no such user ({days_ago % 2})",
            started_at=created,
        )
    if channel == "sms":
        DeliveryAttempt.objects.create(
            notification=notification,
            channel="sms",
            transport="smsaero",
            outcome="success",
            segments=2,
            cost=Decimal("4.50"),
            started_at=created,
        )
    return notification


@pytest.fixture
def month(admin_user, settings):
    """Three weeks of traffic in a time zone whose local days are not UTC's."""
    settings.TIME_ZONE = "Asia/Vladivostok"
    made = []
    for days_ago in range(0, 21):
        made.append(
            make(
                admin_user,
                days_ago=days_ago,
                status=Status.SENT,
                channel="telegram",
                took=1 + days_ago,
            )
        )
        made.append(
            make(
                admin_user,
                days_ago=days_ago,
                status=Status.DELIVERED,
                channel="sms",
                took=30 + days_ago * 7,
            )
        )
        if days_ago % 3 == 0:
            made.append(make(admin_user, days_ago=days_ago, status=Status.FAILED))
    # Older than 30 days: in no period.
    make(admin_user, days_ago=40, status=Status.SENT, channel="telegram", took=1)
    return made


def numbers(data: statistics.Dashboard) -> dict:
    return {
        "by_status": data.by_status,
        "channels": [
            (
                c.channel,
                c.sent,
                c.delivered,
                c.undelivered,
                c.attempts_failed,
                c.attempts_skipped,
                c.p50,
                c.p95,
            )
            for c in data.channels
        ],
        "p": (data.p50, data.p95),
        "sms": (data.sms_sent, data.sms_segments, data.sms_cost),
        "failures": data.failures,
        "series": [(timezone.localtime(day).date(), *counts) for day, *counts in data.series],
    }


@pytest.mark.parametrize("period", ["7d", "30d"])
def test_the_rollup_gives_the_numbers_a_full_scan_gives(month, period):
    live = statistics.dashboard(period)
    assert live.rolled_until == live.since  # nothing rolled up yet: every row scanned

    assert rollup.refresh() == {"days": 30, "counts": DashboardCount.objects.count()}
    rolled = statistics.dashboard(period)

    assert rolled.rolled_until == statistics.settled_until()
    assert numbers(rolled) == numbers(live)
    days = 7 if period == "7d" else 30
    assert len(rolled.series) == min(days, 21)  # one bar a local day, today's included
    assert rolled.by_status[Status.SENT] == min(days, 21)
    assert rolled.sms_cost == Decimal("4.50") * min(days, 21)


def test_a_change_to_a_past_day_shows_at_the_next_refresh(month):
    rollup.refresh()
    today = Notification.objects.filter(status=Status.SENT).order_by("-created_at").first()
    week_old = Notification.objects.filter(status=Status.SENT).order_by("created_at")[15]
    assert timezone.localdate() - timezone.localdate(week_old.created_at) == timedelta(days=6)
    Notification.objects.filter(pk=week_old.pk).update(status=Status.UNDELIVERED)
    before = statistics.dashboard("30d").by_status
    assert before.get(Status.UNDELIVERED, 0) == 0  # read from the rollup, as it was
    rollup.refresh()
    assert statistics.dashboard("30d").by_status[Status.UNDELIVERED] == 1
    # Today and yesterday are always live.
    Notification.objects.filter(pk=today.pk).update(status=Status.EXPIRED)
    assert statistics.dashboard("7d").by_status[Status.EXPIRED] == 1


def test_a_missing_day_is_scanned_and_the_days_after_it_too(month):
    rollup.refresh()
    full = numbers(statistics.dashboard("30d"))
    gap = statistics.period_start("7d")
    DashboardDay.objects.filter(day=gap).delete()
    data = statistics.dashboard("30d")
    assert data.rolled_until == gap
    assert numbers(data) == full


def test_days_past_the_longest_period_are_forgotten(month):
    rollup.refresh()
    stale = DashboardDay.objects.create(
        day=selectors.day_start(timezone.localdate() - timedelta(days=60)),
        computed_at=timezone.now(),
    )
    result = rollup.refresh()
    assert not DashboardDay.objects.filter(pk=stale.pk).exists()
    assert result["days"] == DashboardDay.objects.count() == 30


def test_the_hourly_task_and_the_command_refresh_it(month, capsys):
    assert tasks.rollup_dashboard.call_local() == {
        "days": 30,
        "counts": DashboardCount.objects.count(),
    }
    DashboardDay.objects.all().delete()
    call_command("rollup_dashboard")
    assert "30 day(s) rolled up" in capsys.readouterr().out
    assert DashboardDay.objects.count() == 30


def test_percentiles_off_the_histogram_are_within_a_bucket_of_the_exact_ones(admin_user):
    for i, took in enumerate([0.004, 0.3, 0.9, 1.2, 2.5, 2.6, 7, 11, 45, 600, 3600, 90000]):
        make(
            admin_user,
            days_ago=0,
            status=Status.SENT,
            channel="telegram" if i % 2 else "sms",
            took=took,
        )
    exact = statistics.dashboard("today")
    approximate = statistics.dashboard("7d")
    pairs = [(exact.p50, approximate.p50), (exact.p95, approximate.p95)]
    pairs += [
        (e.p50, a.p50) for e, a in zip(exact.channels, approximate.channels, strict=True) if e.sent
    ]
    assert len(pairs) == 4
    for want, got in pairs:
        ratio = got.total_seconds() / want.total_seconds()
        assert 1 / BUCKET_RATIO <= ratio <= BUCKET_RATIO, (want, got)


def bucket_of(seconds: float) -> int:
    """What the dashboard's SQL puts a time to send in (statistics._send_time_bucket)."""
    edges = statistics.SEND_TIME_EDGES
    return next((i for i, edge in enumerate(edges[1:]) if seconds < edge), len(edges) - 1)


@pytest.mark.parametrize(
    "took", [-2.0, 0.0, 0.004, 0.0131, 0.3, 0.9, 1.2, 2.6, 45.0, 600.0, 3600.0, 90_000.0, 2e6]
)
def test_the_scan_puts_a_time_to_send_in_the_bucket_its_edges_say(admin_user, took):
    """On PostgreSQL the bucket is computed (a logarithm), elsewhere searched: the same."""
    make(admin_user, days_ago=3, status=Status.SENT, channel="email", took=took)
    since = statistics.period_start("30d")
    [tally] = [t for t in statistics.scan(since) if t.kind == DashboardCount.Kind.SEND_TIME]
    assert tally.bucket == bucket_of(took)


def exact_percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(min_value=0.001, max_value=900_000), min_size=1, max_size=200),
    st.sampled_from([0.5, 0.95]),
)
def test_histogram_percentile_is_within_a_bucket_of_percentile_cont(values, fraction):
    counts: dict[int, int] = {}
    for value in values:
        counts[bucket_of(value)] = counts.get(bucket_of(value), 0) + 1
    got = statistics.histogram_percentile(counts, fraction).total_seconds()
    want = exact_percentile(values, fraction)
    first = statistics.SEND_TIME_EDGES[1]  # bucket 0, from 0 to 12.6 ms, is linear
    assert want / BUCKET_RATIO - first <= got <= want * BUCKET_RATIO + first


def test_the_page_says_which_days_came_from_the_rollup(month, admin_client):
    page = admin_client.get(reverse("notify-dashboard") + "?period=30d")
    assert "from the hourly rollup" not in page.text
    rollup.refresh()
    page = admin_client.get(reverse("notify-dashboard") + "?period=30d")
    assert page.status_code == 200
    assert "from the hourly rollup" in page.text and "within 26 %" in page.text


@pytest.mark.django_db(transaction=True)
def test_two_consumers_rolling_up_at_once_do_not_collide(month):
    """On PostgreSQL the second writer skips while the first holds the rollup's lock."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("SQLite's write lock orders them already")
    import psycopg

    settings_dict = connection.settings_dict
    other = psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        host=settings_dict["HOST"],
        port=settings_dict["PORT"] or 5432,
        autocommit=False,
    )
    try:
        other.execute("SELECT pg_advisory_xact_lock(%s)", [rollup.LOCK_KEY])
        assert rollup.refresh() == {"days": 0, "counts": 0}
        assert DashboardDay.objects.count() == 0
    finally:
        other.rollback()
        other.close()
    assert rollup.refresh()["days"] == 30
