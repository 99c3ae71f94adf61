"""Small helpers of the suppression tests."""

from __future__ import annotations

from django.utils import timezone

from notifications import delivery, services
from notifications.models import Notification


def send(user, message: str = "Your order shipped", **kwargs) -> Notification:
    """Create a notification for ``user`` and deliver it in this process; it, reloaded."""
    notification = services.notification_create(user=user, message=message, **kwargs)
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())
    delivery.deliver_now([notification.pk])
    notification.refresh_from_db()
    return notification


def attempts(notification: Notification) -> list[tuple[str, str, str]]:
    return list(notification.attempts.order_by("pk").values_list("channel", "outcome", "error"))
