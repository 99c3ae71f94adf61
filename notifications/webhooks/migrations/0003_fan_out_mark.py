"""SQLite: the lane fans events out by a high-water mark (``WebhookFanOutMark``), and the
triggers write events already ``fanned_out``, so that none enters the partial index in the
statement that sends a notification (``notifications.webhooks.outbox``, ``triggers``).

On SQLite, in this migration's one transaction (which holds the write lock): the mark starts
just below the first event still to fan out (or at the last event, or 0, when there is
none), those events are flagged (an old lane still running then finds nothing to do, and
leaves them to the new one's mark: none is fanned out twice), and the triggers are replaced.
Reversed, the events above the mark lose the flag again and the triggers write it as before.
On PostgreSQL it only makes the (unused, empty) table: its triggers and lanes are unchanged."""

from django.db import migrations, models

from notifications.webhooks import triggers


def start_mark(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "sqlite":
        return
    db = connection.alias
    events = apps.get_model("webhooks", "WebhookEvent").objects.using(db)
    mark = apps.get_model("webhooks", "WebhookFanOutMark").objects.using(db)
    waiting = events.filter(fanned_out=False).order_by("id").values_list("id", flat=True)
    first = waiting.first()
    if first is not None:
        last = first - 1
    else:
        last = events.order_by("-id").values_list("id", flat=True).first() or 0
    mark.create(pk=1, last_event_id=last)
    events.filter(fanned_out=False).update(fanned_out=True)
    triggers.install(connection, by_mark=True)


def back_to_flags(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "sqlite":
        return
    db = connection.alias
    events = apps.get_model("webhooks", "WebhookEvent").objects.using(db)
    last = (
        apps.get_model("webhooks", "WebhookFanOutMark")
        .objects.using(db)
        .filter(pk=1)
        .values_list("last_event_id", flat=True)
        .first()
    )
    if last is None:  # as ``outbox`` reads a missing mark: the last event with a delivery
        deliveries = apps.get_model("webhooks", "WebhookDelivery").objects.using(db)
        last = deliveries.order_by("-event_id").values_list("event_id", flat=True).first() or 0
    events.filter(id__gt=last).update(fanned_out=False)
    triggers.install(connection, by_mark=False)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0002_outbox_triggers"),
    ]

    operations = [
        migrations.CreateModel(
            name="WebhookFanOutMark",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "last_event_id",
                    models.BigIntegerField(verbose_name="last event fanned out"),
                ),
            ],
            options={
                "verbose_name": "webhook fan-out mark",
                "verbose_name_plural": "webhook fan-out marks",
            },
        ),
        migrations.RunPython(start_mark, back_to_flags),
    ]
