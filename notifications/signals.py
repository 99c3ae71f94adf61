"""Every new user gets a contact; every new notification is queued after its commit."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone

from notifications.models import Notification, UserContact


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_contact_for_new_user(
    sender, instance, created: bool, raw: bool = False, **kwargs
) -> None:
    if created and not raw:
        UserContact.objects.get_or_create(user=instance)


@receiver(pre_save, sender=Notification)
def queue_new_notification(sender, instance: Notification, raw: bool = False, **kwargs) -> None:
    """With ``NOTIFY_SEND_ON_CREATE``, a new pending notification is saved as queued."""
    if raw or not instance._state.adding or not settings.NOTIFY_SEND_ON_CREATE:
        return
    if instance.status == Notification.Status.PENDING:
        now = timezone.now()
        instance.status = Notification.Status.QUEUED
        instance.queued_at = now
        instance.next_attempt_at = now


@receiver(post_save, sender=Notification)
def ring_for_new_notification(
    sender, instance: Notification, created: bool, raw: bool = False, **kwargs
) -> None:
    if created and not raw and instance.status == Notification.Status.QUEUED:
        from notifications.services import ring_doorbell

        pk = instance.pk
        transaction.on_commit(lambda: ring_doorbell([pk]))
