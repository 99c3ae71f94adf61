"""What the webhooks tests share besides fixtures."""

from __future__ import annotations

from notifications.models import Notification
from notifications.webhooks import outbox
from notifications.webhooks.models import WebhookEvent, WebhookFanOutMark

# Retries a test can wait for: 0.2 s, 0.2 s, 0.4 s (four tries in all).
FAST_SCHEDULE = [0.2, 0.2, 0.4]


def set_status(notification: Notification, status: str, **fields) -> None:
    """Change a notification's status as the pipeline does: one UPDATE of the row."""
    Notification.objects.filter(pk=notification.pk).update(status=status, **fields)


def forget_fan_out() -> None:
    """Every event as if no lane had fanned it out yet (deliveries made stay): the mark
    below the first event on SQLite, the flags down on PostgreSQL."""
    if outbox.by_mark():
        first = WebhookEvent.objects.order_by("id").values_list("id", flat=True).first() or 1
        WebhookFanOutMark.objects.update_or_create(pk=1, defaults={"last_event_id": first - 1})
    else:
        WebhookEvent.objects.update(fanned_out=False)
