"""What the webhooks tests share besides fixtures."""

from __future__ import annotations

from notifications.models import Notification

# Retries a test can wait for: 0.2 s, 0.2 s, 0.4 s (four tries in all).
FAST_SCHEDULE = [0.2, 0.2, 0.4]


def set_status(notification: Notification, status: str, **fields) -> None:
    """Change a notification's status as the pipeline does: one UPDATE of the row."""
    Notification.objects.filter(pk=notification.pk).update(status=status, **fields)
