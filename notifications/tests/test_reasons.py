"""Failure reasons: the error without addresses, ids and numbers, stored with each attempt and
counted by the dashboard, live and rolled up alike, each with an example of its errors; the
migration gives attempts recorded before reasons were theirs."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from notifications import delivery, rollup, services, statistics
from notifications.models import DashboardCount, DeliveryAttempt, Notification
from notifications.reasons import MAX_LENGTH, reason_of

Status = Notification.Status
MIGRATION = importlib.import_module("notifications.migrations.0014_operator_views_at_scale")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            "smtp.example.com:587 refused the recipient: 550 5.1.1 <ann.smith42@example.org>: "
            "Recipient address rejected: User unknown",
            "smtp.example.com:# refused the recipient: 550 5.1.1 <email>: "
            "Recipient address rejected: User unknown",
        ),
        (
            "452 4.2.2 bob@mail.example.com: Mailbox full, quota exceeded (407 MB)",
            "452 4.2.2 <email>: Mailbox full, quota exceeded (# MB)",
        ),
        ("SMS Aero: invalid number (+7 916 123-45-67)", "SMS Aero: invalid number (<phone>)"),
        (
            "Telegram 429: Too Many Requests: retry after 37",
            "Telegram 429: Too Many Requests: retry after #",
        ),
        (
            "SMS Aero (HTTP 503): Service Unavailable, request 123e4567-e89b-12d3-a456-426614174000",
            "SMS Aero (HTTP 503): Service Unavailable, request <id>",
        ),
        (
            "queued as 4F3A21C0D9 at mx2; see https://status.example.net/x?id=9",
            "queued as <id> at mx2; see <url>",
        ),
        ("1 of 3 parts accepted; then: timed out", "# of # parts accepted; then: timed out"),
    ],
)
def test_addresses_ids_and_numbers_are_taken_out_and_status_codes_kept(error, reason):
    assert reason_of(error) == reason


def test_errors_that_differ_only_by_recipient_have_one_reason():
    bounces = [
        f"smtp.example.com:587 refused the recipient: 550 5.1.1 <{who}@example.org>: "
        "Recipient address rejected"
        for who in ("ann.smith42", "boris.ivanov7", "clara")
    ]
    assert len({reason_of(bounce) for bounce in bounces}) == 1
    assert reason_of(bounces[0]) != reason_of(bounces[0].replace("550 5.1.1", "452 4.2.2"))


@given(st.text(max_size=300))
def test_a_reason_is_its_own_reason_and_fits_its_column(error):
    reason = reason_of(error)
    assert reason_of(reason) == reason
    assert len(reason) <= MAX_LENGTH


@pytest.fixture
def mail_only(settings, smtp):
    """Email wired to the fake SMTP server, the only channel anyone can be reached on."""
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.DEFAULT_FROM_EMAIL = "service@example.com"
    settings.EMAIL_TIMEOUT = 2.0
    return smtp


def bounce(make_user, smtp, address: str) -> Notification:
    smtp.handler.refuse_permanently.add(address)
    notification = services.notification_create(user=make_user(email=address), message="Hello")
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())
    delivery.deliver_now([notification.pk])
    notification.refresh_from_db()
    return notification


@pytest.mark.django_db(transaction=True)
def test_a_refused_send_is_recorded_with_its_reason_and_counted_by_it(mail_only, make_user):
    first = bounce(make_user, mail_only, "ann.smith42@example.org")
    second = bounce(make_user, mail_only, "boris.ivanov7@example.net")
    assert first.status == second.status == Status.FAILED
    refused = DeliveryAttempt.objects.filter(outcome="permanent", channel="email")
    assert {a.error.split("<")[1].split(">")[0] for a in refused} == {
        "ann.smith42@example.org",
        "boris.ivanov7@example.net",
    }
    assert {a.reason for a in refused} == {
        "SMTP server # refused the recipient: 550 5.1.1 <email>: Recipient address "
        "rejected: User unknown"
    }

    [failure] = [f for f in statistics.dashboard("today").failures if f["channel"] == "email"]
    assert failure["n"] == 2
    assert failure["reason"] == refused[0].reason
    assert failure["example"] in {a.error for a in refused}


def fail(user, error: str, *, days_ago: int, outcome: str = "permanent") -> DeliveryAttempt:
    """A failed attempt ``days_ago`` local days ago, at local noon, saved as the ORM saves."""
    noon = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    notification = Notification.objects.create(user=user, message="m", status=Status.FAILED)
    Notification.objects.filter(pk=notification.pk).update(
        created_at=noon - timedelta(days=days_ago)
    )
    return DeliveryAttempt.objects.create(
        notification=notification,
        channel="email",
        transport="email",
        outcome=outcome,
        error=error,
        started_at=noon - timedelta(days=days_ago),
    )


@pytest.fixture
def bounces(admin_user, settings):
    """Two weeks of bounces, each to another address, in a zone whose days are not UTC's."""
    settings.TIME_ZONE = "America/Sao_Paulo"
    for days_ago in range(14):
        for n in range(3):
            fail(
                admin_user,
                f"mx.example.org refused the recipient: 550 5.1.1 <user{days_ago}.{n}@example.org>: "
                "no such user",
                days_ago=days_ago,
            )
        fail(
            admin_user,
            f"mx.example.org: 421 try again in {days_ago} s",
            days_ago=days_ago,
            outcome="transient",
        )


@pytest.mark.django_db
def test_the_dashboard_counts_failures_by_reason_with_an_example_before_and_after_the_rollup(
    bounces,
):
    live = statistics.dashboard("30d")
    assert live.rolled_until == live.since  # no rollup yet: every row scanned
    assert [(f["reason"], f["n"]) for f in live.failures] == [
        ("mx.example.org refused the recipient: 550 5.1.1 <email>: no such user", 42),
        ("mx.example.org: 421 try again in # s", 14),
    ]
    assert "@example.org>" in live.failures[0]["example"]

    rollup.refresh()
    rolled = statistics.dashboard("30d")
    assert rolled.rolled_until == statistics.settled_until()
    assert rolled.failures == live.failures  # the same reasons, counts and examples
    assert DashboardCount.objects.filter(kind="attempts").exclude(reason="").count() == 2 * 12


@pytest.mark.django_db
def test_a_day_rolled_up_before_reasons_is_counted_by_reason(bounces):
    rollup.refresh()
    # As a rollup written before this version kept them: each error its own row, no example.
    for count in DashboardCount.objects.filter(kind="attempts").exclude(reason=""):
        count.example = ""
        count.save()
        DashboardCount.objects.create(
            day=count.day,
            kind=count.kind,
            channel=count.channel,
            status=count.status,
            reason=count.reason.replace("<email>", "old@example.org").replace("#", "99"),
            n=1,
        )
    failures = statistics.dashboard("30d").failures
    assert [(f["reason"], f["n"]) for f in failures] == [
        ("mx.example.org refused the recipient: 550 5.1.1 <email>: no such user", 42 + 12),
        ("mx.example.org: 421 try again in # s", 14 + 12),
    ]
    assert failures[0]["example"]


@pytest.mark.django_db
def test_the_page_shows_each_reason_with_an_example(bounces, admin_client):
    page = admin_client.get("/admin/dashboard/?period=7d").text
    assert "550 5.1.1 &lt;email&gt;: no such user" in page
    assert "e.g." in page and "@example.org&gt;: no such user" in page


@pytest.mark.django_db
def test_the_migration_gives_attempts_recorded_before_reasons_theirs(admin_user):
    attempt = fail(admin_user, "Telegram 429: retry after 7", days_ago=1)
    DeliveryAttempt.objects.filter(pk=attempt.pk).update(reason="")  # as before the column
    skipped = fail(admin_user, "", days_ago=1)
    MIGRATION.stamp_reasons(apps, None)
    attempt.refresh_from_db()
    skipped.refresh_from_db()
    assert (attempt.reason, skipped.reason) == ("Telegram 429: retry after #", "")


@pytest.mark.django_db
def test_the_migration_adds_pg_trgm_and_its_indexes_on_postgresql_only():
    with connection.cursor() as cursor:
        columns = {
            c.name
            for c in connection.introspection.get_table_description(
                cursor, "notifications_deliveryattempt"
            )
        }
        indexes = connection.introspection.get_constraints(cursor, "notifications_notification")
        if connection.vendor == "postgresql":
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
            assert cursor.fetchone() is not None
            cursor.execute("SELECT stxname FROM pg_statistic_ext ORDER BY stxname")
            statistics = {row[0] for row in cursor.fetchall()}
            assert {name for name, _table, _expression in MIGRATION.STATISTICS} <= statistics
    assert "reason" in columns
    assert "notif_campaign_created_idx" in indexes
    assert ("notif_message_trgm_idx" in indexes) == (connection.vendor == "postgresql")


def test_the_statistics_are_on_the_expressions_the_dashboard_groups_by():
    """PostgreSQL uses the statistics only for these very expressions."""
    stated = {name: expression for name, _table, expression in MIGRATION.STATISTICS}
    assert stated["notif_day_stat"] == statistics.PG_DAY_SQL.format(unit="day", column="created_at")
    assert stated["attempt_day_stat"] == statistics.PG_DAY_SQL.format(
        unit="day", column="started_at"
    )
    assert stated["notif_send_time_stat"] == statistics.PG_SEND_TIME_BUCKET_SQL


def estimated_groups(sql: str, params) -> int:
    """How many rows PostgreSQL expects a grouped query to give, in the scan's settings."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('TimeZone', %s, true)", [str(timezone.get_current_timezone())]
        )
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    return (plan[0] if isinstance(plan, list) else plan)["Plan"]["Plan Rows"]


@pytest.mark.django_db
def test_postgresql_expects_the_scans_to_give_a_few_groups_not_a_row_each(admin_user):
    """What lets it aggregate in parallel at a million rows (the statistics of migration
    0014 on the expressions the scans group by)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite plans no parallel aggregation")
    now = timezone.now()
    made = Notification.objects.bulk_create(
        Notification(
            user=admin_user,
            message="m",
            status=Status.SENT,
            channel="email",
            queued_at=now,
            sent_at=now + timedelta(seconds=1 + i % 3),
        )
        for i in range(3000)
    )
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            notification=n, channel="email", transport="email", outcome="success", started_at=now
        )
        for n in made
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE notifications_notification SET created_at = created_at - (id % 30) * interval '1 day'"
        )
        cursor.execute(
            "UPDATE notifications_deliveryattempt SET started_at = started_at - (id % 30) * interval '1 day'"
        )
        cursor.execute("ANALYZE notifications_notification, notifications_deliveryattempt")
    with CaptureQueriesContext(connection) as queries:
        statistics.scan(now - timedelta(days=31))
    grouped = [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"]]
    assert len(grouped) == 2
    for sql in grouped:
        assert estimated_groups(sql, None) < 500  # a row each would be 3,000
