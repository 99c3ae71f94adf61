"""The operator's views at a million rows: failure reasons stored with each attempt (those
recorded before get theirs here) and an example kept with each rolled-up reason; the campaign
filter's index; on PostgreSQL the trigram indexes (pg_trgm) the admin's search reads, and the
statistics that let the dashboard's scans aggregate in parallel."""

import logging

from django.conf import settings
from django.db import DatabaseError, migrations, models, transaction

from notifications.reasons import reason_of

logger = logging.getLogger(__name__)

# The expressions the dashboard groups by (notifications.statistics: PG_DAY_SQL,
# PG_SEND_TIME_BUCKET_SQL), stated exactly as it states them: PostgreSQL then knows how few
# groups they make. Without them it plans for a million groups and aggregates in one process.
STATISTICS = [
    (
        "notif_day_stat",
        "notifications_notification",
        "date_part('epoch', date_trunc('day', created_at))",
    ),
    (
        "notif_send_time_stat",
        "notifications_notification",
        "(CASE WHEN sent_at IS NOT NULL AND queued_at IS NOT NULL THEN LEAST(80, GREATEST(0, "
        "FLOOR(10 * LOG(GREATEST(date_part('epoch', sent_at - GREATEST(queued_at, "
        "COALESCE(send_at, queued_at))), 0.001::float8) / 0.01::float8))))::integer END)",
    ),
    (
        "attempt_day_stat",
        "notifications_deliveryattempt",
        "date_part('epoch', date_trunc('day', started_at))",
    ),
]

# On PostgreSQL only: SQLite has no pg_trgm, and its search scans (at its scale, quickly).
# Each index is on UPPER(column), the expression Django's icontains compares.
TRIGRAM_INDEXES = [
    ("notif_message_trgm_idx", "notifications_notification", "message"),
    ("user_username_trgm_idx", None, "username"),
    ("user_email_trgm_idx", None, "email"),
]


def _trigram_indexes(apps):
    user_table = apps.get_model(settings.AUTH_USER_MODEL)._meta.db_table
    for name, table, column in TRIGRAM_INDEXES:
        yield name, table or user_table, column


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as err:
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create
        # it. A role that may not is warned; the admin's search works without the indexes.
        logger.warning("pg_trgm not created (%s); the admin's search scans instead", err)
        return
    for name, table, column in _trigram_indexes(apps):
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote(table)} "
            f"USING gin ((UPPER({quote(column)}::text)) gin_trgm_ops)"
        )


def create_statistics(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    quote = schema_editor.quote_name
    for name, table, expression in STATISTICS:
        schema_editor.execute(
            f"CREATE STATISTICS IF NOT EXISTS {quote(name)} ON ({expression}) FROM {quote(table)}"
        )
    tables = sorted({table for _name, table, _expression in STATISTICS})
    schema_editor.execute(f"ANALYZE {', '.join(quote(table) for table in tables)}")


def drop_statistics(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _expression in STATISTICS:
        schema_editor.execute(f"DROP STATISTICS IF EXISTS {schema_editor.quote_name(name)}")


def stamp_reasons(apps, schema_editor):
    """Each attempt recorded with an error before reasons were gets its reason, in batches
    by id."""
    DeliveryAttempt = apps.get_model("notifications", "DeliveryAttempt")
    unstamped = (
        DeliveryAttempt.objects.filter(reason="").exclude(error="").only("id", "error").order_by("pk")
    )
    last = 0
    while batch := list(unstamped.filter(pk__gt=last)[:2000]):
        for attempt in batch:
            attempt.reason = reason_of(attempt.error)
        DeliveryAttempt.objects.bulk_update(batch, ["reason"])
        last = batch[-1].pk


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in _trigram_indexes(apps):
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0013_notification_telegram_link'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='dashboardcount',
            name='example',
            field=models.CharField(blank=True, db_default='', default='', max_length=200),
        ),
        migrations.AddField(
            model_name='deliveryattempt',
            name='reason',
            field=models.CharField(blank=True, db_default='', default='', editable=False, max_length=200, verbose_name='reason'),
        ),
        migrations.AddIndex(
            model_name='notification',
            index=models.Index(fields=['campaign', 'created_at', 'id'], name='notif_campaign_created_idx'),
        ),
        migrations.RunPython(stamp_reasons, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes, elidable=False),
        migrations.RunPython(create_statistics, drop_statistics, elidable=False),
    ]
