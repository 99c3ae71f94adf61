"""A campaign's message rows are marked (``Notification.campaign_message``), and on
PostgreSQL the message's trigram index (migration 0014) leaves them out: the admin's search
finds them by their campaign's message instead (``notifications.search``). Each row of a
million-recipient campaign put the same ~40 trigrams into the index, most of the cost of
inserting it."""

from django.db import migrations, models

INDEX = "notif_message_trgm_idx"
TABLE = "notifications_notification"
INDEXED = "NOT campaign_message OR campaign_id IS NULL"


def _has_trigrams(schema_editor) -> bool:
    if schema_editor.connection.vendor != "postgresql":
        return False
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        return cursor.fetchone() is not None


def _index(schema_editor, where: str) -> None:
    if not _has_trigrams(schema_editor):  # 0014 warned: the search scans
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
    schema_editor.execute(
        f"CREATE INDEX {INDEX} ON {TABLE} USING gin ((UPPER(message::text)) gin_trgm_ops)"
        + (f" WHERE {where}" if where else "")
    )


def partial(apps, schema_editor):
    _index(schema_editor, INDEXED)


def whole(apps, schema_editor):
    _index(schema_editor, "")


class Migration(migrations.Migration):
    dependencies = [("notifications", "0018_campaign_cancel_cursor")]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="campaign_message",
            field=models.BooleanField(default=False, db_default=False, editable=False),
        ),
        migrations.RunPython(partial, whole, elidable=False),
    ]
