"""The outbox's triggers on notifications (``notifications.webhooks.triggers``): a final
status change writes its webhook event in the same statement. Creating them takes a short
lock on the notifications table (PostgreSQL: SHARE ROW EXCLUSIVE, writers wait a moment);
no row is read or rewritten."""

from django.db import migrations

from notifications.webhooks import triggers


def install(apps, schema_editor):
    triggers.install(schema_editor.connection)


def uninstall(apps, schema_editor):
    triggers.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
        ("notifications", "0015_categories_digests_quiet_hours"),
        ("preferences", "0001_initial"),
    ]

    operations = [migrations.RunPython(install, uninstall)]
