"""Retention: final notifications untouched for NOTIFY_RETENTION_DAYS go with their attempts,
SMS receipts and ended campaigns' skipped recipients; nothing waiting, nothing recently touched
and nothing of a running campaign goes; the dashboard shows the same numbers after a prune;
runs go in bounded batches, one at a time, skipping rows someone holds."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, models
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from notifications import rollup, selectors, statistics
from notifications.models import (
    Campaign,
    CampaignSkip,
    DashboardDay,
    DeliveryAttempt,
    Notification,
    SmsPart,
)
from notifications.operations import retention, tasks
from notifications.operations.models import RetentionWatermark
from notifications.tests.fixtures import wait_for

pytestmark = pytest.mark.django_db
Status = Notification.Status
ENDED = {Status.SENT, Status.DELIVERED, Status.UNDELIVERED}


def ago(days: float) -> datetime:
    return timezone.now() - timedelta(days=days)


def old(user, status: str = Status.SENT, *, days: float = 100, **fields) -> Notification:
    """A notification created, queued and (if it ended so) sent ``days`` ago, with the SMS
    attempt that sent it and that SMS's receipt row."""
    at = ago(days)
    [notification] = Notification.objects.bulk_create(  # sent nowhere: no signal
        [
            Notification(
                user=user,
                message="m",
                status=status,
                channel="sms" if status in ENDED else "",
                queued_at=at,
                sent_at=at if status in ENDED else None,
                **fields,
            )
        ]
    )
    Notification.objects.filter(pk=notification.pk).update(created_at=at)
    attempt = DeliveryAttempt.objects.create(
        notification=notification,
        channel="sms",
        transport="sms_api",
        outcome="success",
        started_at=at,
        segments=1,
        cost=Decimal("4.95"),
    )
    SmsPart.objects.create(transport="sms_api", message_id=f"id-{notification.pk}", attempt=attempt)
    return notification


def campaign(state: str = Campaign.State.READY, *, days: float = 100) -> Campaign:
    made = Campaign.objects.create(name="c", state=state, recipients=2, skipped=1)
    Campaign.objects.filter(pk=made.pk).update(created_at=ago(days), updated_at=ago(days))
    return made


def left(*notifications: Notification) -> set[int]:
    """Which of ``notifications`` are still there."""
    return set(
        Notification.objects.filter(pk__in=[n.pk for n in notifications]).values_list(
            "pk", flat=True
        )
    )


# --- what goes and what stays ------------------------------------------------------------------
def test_every_final_status_goes_with_its_attempts_and_receipts_and_no_waiting_one(make_user):
    user = make_user()
    made = {status: old(user, status) for status in Status.values}

    result = retention.prune()

    assert result.done and result.notifications == len(selectors.FINAL)
    kept = Notification.objects.filter(pk__in=[n.pk for n in made.values()])
    statuses = set(kept.values_list("status", flat=True))
    assert statuses == set(Status.values) - set(selectors.FINAL)
    assert {Status.PENDING, Status.SCHEDULED, Status.QUEUED, Status.SENDING} <= statuses
    assert DeliveryAttempt.objects.count() == SmsPart.objects.count() == len(statuses)
    assert set(DeliveryAttempt.objects.values_list("notification_id", flat=True)) == set(
        kept.values_list("pk", flat=True)
    )
    assert (result.attempts, result.sms_parts) == (len(selectors.FINAL), len(selectors.FINAL))


def _sent_again(n: Notification) -> None:
    Notification.objects.filter(pk=n.pk).update(queued_at=ago(10), sent_at=ago(10))


def _receipt_yesterday(n: Notification) -> None:
    Notification.objects.filter(pk=n.pk).update(status=Status.DELIVERED)
    DeliveryAttempt.objects.filter(notification=n).update(
        receipt_status="delivered", receipt_at=ago(1)
    )


def _requeued_then_failed(n: Notification) -> None:
    Notification.objects.filter(pk=n.pk).update(status=Status.FAILED, queued_at=ago(10))


def _recent_attempt(n: Notification) -> None:
    Notification.objects.filter(pk=n.pk).update(status=Status.FAILED, sent_at=None)
    DeliveryAttempt.objects.create(
        notification=n, channel="email", transport="email", outcome="permanent", started_at=ago(10)
    )


def _expired_lately(n: Notification) -> None:
    Notification.objects.filter(pk=n.pk).update(
        status=Status.EXPIRED, sent_at=None, expires_at=ago(10)
    )


def _cancelled_while_sending(n: Notification) -> None:
    # Cancel keeps the lease of a row being sent: its worker may still write it.
    Notification.objects.filter(pk=n.pk).update(
        status=Status.CANCELLED,
        sent_at=None,
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )


def _cancelled_before_its_time(n: Notification) -> None:
    Notification.objects.filter(pk=n.pk).update(
        status=Status.CANCELLED, sent_at=None, send_at=ago(10)
    )


@pytest.mark.parametrize(
    "touch",
    [
        _sent_again,
        _receipt_yesterday,
        _requeued_then_failed,
        _recent_attempt,
        _expired_lately,
        _cancelled_while_sending,
        _cancelled_before_its_time,
    ],
)
def test_a_notification_created_long_ago_but_touched_lately_stays(
    make_user, touch: Callable[[Notification], None]
):
    user = make_user()
    touched, untouched = old(user), old(user)
    touch(touched)

    retention.prune()

    assert left(touched, untouched) == {touched.pk}
    assert DeliveryAttempt.objects.filter(notification=touched).exists()


def test_a_notification_untouched_for_less_than_the_window_stays(make_user, settings):
    settings.NOTIFY_RETENTION_DAYS = 90
    user = make_user()
    at_100, at_80 = old(user, days=100), old(user, days=80)
    retention.prune()
    assert left(at_100, at_80) == {at_80.pk}


def test_a_running_campaign_keeps_everything_and_an_ended_one_only_its_row(make_user):
    user = make_user()
    creating = campaign(Campaign.State.CREATING)
    waiting = campaign()
    ended = campaign()
    ended_lately = campaign(days=10)  # cancelled ten days ago, say
    rows = {
        c.pk: [old(user, campaign=c), old(user, campaign=c)]
        for c in (creating, waiting, ended, ended_lately)
    }
    still_queued = old(user, Status.QUEUED, campaign=waiting)
    for c in (creating, waiting, ended, ended_lately):
        CampaignSkip.objects.create(campaign=c, user=user, reason=CampaignSkip.Reason.NO_ADDRESS)

    result = retention.prune()

    assert left(*rows[creating.pk], *rows[waiting.pk], still_queued) == {
        n.pk for n in [*rows[creating.pk], *rows[waiting.pk], still_queued]
    }
    assert left(*rows[ended.pk], *rows[ended_lately.pk]) == set()
    # The ended campaign's skipped recipients went with its last notification; the campaign
    # row stays, with its counts. One that changed lately keeps its skipped recipients.
    assert set(CampaignSkip.objects.values_list("campaign_id", flat=True)) == {
        creating.pk,
        waiting.pk,
        ended_lately.pk,
    }
    assert result.campaign_skips == 1
    ended.refresh_from_db()
    assert (ended.recipients, ended.skipped) == (2, 1)


def test_nothing_that_points_at_a_notification_can_stop_its_deletion():
    """Rows that come to refer to a notification or an attempt (webhook events, digest items)
    go with it (CASCADE) or let go of it (SET_NULL); PROTECT or a bare database constraint
    would make every prune fail."""
    refusing = [
        f"{relation.related_model.__name__}.{relation.field.name}"
        for model in (Notification, DeliveryAttempt, SmsPart)
        for relation in model._meta.related_objects
        if relation.on_delete not in (models.CASCADE, models.SET_NULL)
    ]
    assert refusing == []


# --- the dashboard -------------------------------------------------------------------------------
def traffic(user) -> None:
    """Forty local days of sends, receipts, failures and SMS, a few a day at local noon."""
    noon = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    for days_ago in range(40):
        at = noon - timedelta(days=days_ago)
        for status, channel, took in [
            (Status.SENT, "telegram", 1 + days_ago),
            (Status.DELIVERED, "sms", 30 + 7 * days_ago),
            (Status.FAILED, "", None),
        ][: 2 + days_ago % 2]:
            n = Notification.objects.create(
                user=user,
                message="m",
                status=status,
                channel=channel,
                queued_at=at,
                sent_at=at + timedelta(seconds=took) if took else None,
            )
            Notification.objects.filter(pk=n.pk).update(created_at=at)
            DeliveryAttempt.objects.create(
                notification=n,
                channel=channel or "email",
                transport=channel or "email",
                outcome="success" if took else "permanent",
                error="" if took else f"SMTP 550 ({days_ago % 3})",
                started_at=at,
                segments=2 if channel == "sms" else None,
                cost=Decimal("4.50") if channel == "sms" else None,
            )


def numbers(period: str) -> dict:
    data = statistics.dashboard(period)
    return {
        "by_status": data.by_status,
        "channels": [
            (c.channel, c.sent, c.delivered, c.undelivered, c.attempts_failed, c.p50, c.p95)
            for c in data.channels
        ],
        "p": (data.p50, data.p95),
        "sms": (data.sms_sent, data.sms_segments, data.sms_cost),
        "failures": data.failures,
        "series": [(timezone.localtime(day).date(), *counts) for day, *counts in data.series],
    }


def test_the_dashboard_shows_the_same_days_after_a_prune_and_the_next_rollups(make_user, settings):
    settings.TIME_ZONE = "Asia/Vladivostok"  # local days are not UTC's
    settings.NOTIFY_RETENTION_DAYS = 5
    traffic(make_user())
    rollup.refresh()
    before = {period: numbers(period) for period in ("7d", "30d")}
    assert before["30d"]["by_status"][Status.SENT] == 30

    result = retention.prune()

    assert result.done and result.notifications > 70
    oldest = Notification.objects.order_by("created_at").first()
    assert timezone.now() - oldest.created_at < timedelta(days=5)
    assert {period: numbers(period) for period in before} == before
    rollup.refresh()  # the next hourly rollup: the pruned days are kept as they were
    assert {period: numbers(period) for period in before} == before
    settings.NOTIFY_RETENTION_DAYS = 60  # a longer window brings no row back
    rollup.refresh()
    assert {period: numbers(period) for period in before} == before


def test_rows_of_days_not_rolled_up_yet_wait_for_the_rollup(make_user, settings):
    settings.NOTIFY_RETENTION_DAYS = 5
    user = make_user()
    ten_days, forty_days = old(user, days=10), old(user, days=40)

    out = io.StringIO()
    call_command("prune_old", stdout=out)  # no rollup yet: only days no dashboard shows go

    assert left(ten_days, forty_days) == {ten_days.pk}
    assert "held back to the days the dashboard's rollup has covered" in out.getvalue()
    assert RetentionWatermark.pruned_before_now() == rollup.covered_until()
    rollup.refresh()
    result = retention.prune()
    assert (result.notifications, result.held_back) == (1, False)
    assert left(ten_days) == set()
    assert DashboardDay.objects.count() == rollup.KEPT_DAYS


# --- how a run goes ------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_run_deletes_in_batches_each_committed_on_its_own(make_user):
    user = make_user()
    for _ in range(10):
        old(user)
    seen: list[tuple[bool, int]] = []

    def progress(result: retention.PruneResult) -> None:
        seen.append((connection.in_atomic_block, Notification.objects.count()))

    result = retention.prune(batch_size=3, progress=progress)

    assert seen == [(False, 7), (False, 4), (False, 1), (False, 0)]
    assert (result.batches, result.notifications, result.done) == (4, 10, True)


def test_a_run_stops_at_its_time_budget_and_the_next_goes_on(make_user):
    user = make_user()
    for _ in range(5):
        old(user)

    first = retention.prune(batch_size=3, seconds=0)  # one batch, then the budget is spent

    assert (first.notifications, first.batches, first.done) == (3, 1, False)
    second = retention.prune(batch_size=3)
    assert (second.notifications, second.done) == (2, True)
    assert Notification.objects.count() == 0


def test_the_dry_run_counts_what_a_run_deletes_and_changes_nothing(make_user):
    user = make_user()
    old(user), old(user), old(user, Status.QUEUED), old(user, days=10)
    ended = campaign()
    old(user, campaign=ended)
    CampaignSkip.objects.create(campaign=ended, user=user, reason=CampaignSkip.Reason.OPTED_OUT)
    tables = (Notification, DeliveryAttempt, SmsPart, CampaignSkip)
    counts = [model.objects.count() for model in tables]

    out = io.StringIO()
    call_command("prune_old", "--dry-run", stdout=out)

    assert (
        "Would delete 3 notification(s), 3 attempt(s), 3 SMS receipt(s), 1 skipped"
        in out.getvalue()
    )
    assert [model.objects.count() for model in tables] == counts
    assert not RetentionWatermark.objects.exists()
    out = io.StringIO()
    call_command("prune_old", stdout=out)
    assert "Deleted 3 notification(s), 3 attempt(s), 3 SMS receipt(s), 1 skipped" in out.getvalue()
    assert "done." in out.getvalue()
    assert Notification.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_the_hourly_task_is_in_the_consumer_and_runs_the_prune(make_user, start_consumer):
    consumer = start_consumer(workers=1).wait_started()
    wait_for(lambda: "+ notifications.operations.tasks.prune_old" in consumer.output())
    hour = datetime(2026, 1, 1, 5, 0)
    due = [
        minute
        for minute in range(24 * 60)
        if any(
            task.name == "prune_old"
            for task in HUEY.read_periodic(hour + timedelta(minutes=minute))
        )
    ]
    assert due == [60 * h + 37 for h in range(24)]  # hourly, ten minutes after the rollup
    user = make_user()
    gone, kept = old(user), old(user, days=10)
    assert tasks.prune_old.call_local()["notifications"] == 1
    assert left(gone, kept) == {kept.pk}


# --- several at once (PostgreSQL) -----------------------------------------------------------------
def other_connection():
    import psycopg

    settings_dict = connection.settings_dict
    return psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        autocommit=False,
    )


@pytest.mark.django_db(transaction=True)
def test_a_second_run_while_one_is_going_does_nothing(make_user):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's write lock puts batches one after another already")
    user = make_user()
    gone = old(user)
    other = other_connection()
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [retention.LOCK_KEY])  # another host's run
        result = retention.prune()
        assert (result.busy, result.batches) == (True, 0)
        assert left(gone) == {gone.pk}
    finally:
        other.rollback()
        other.close()
    assert retention.prune().notifications == 1


@pytest.mark.django_db(transaction=True)
def test_a_row_another_transaction_holds_is_left_and_not_waited_for(make_user):
    if connection.vendor != "postgresql":
        pytest.skip("on SQLite a batch holds the write lock: no other transaction holds a row")
    user = make_user()
    held, free = old(user), old(user)
    other = other_connection()
    try:
        # A receipt being settled, say: its transaction holds the row.
        other.execute(
            f"SELECT id FROM {Notification._meta.db_table} WHERE id = %s FOR UPDATE", [held.pk]
        )
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")  # waiting would fail, not hang
        result = retention.prune()
    finally:
        other.rollback()
        other.close()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
    assert result.notifications == 1
    assert left(held, free) == {held.pk}
    assert retention.prune().notifications == 1  # the next run takes it
