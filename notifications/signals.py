"""Every new user gets a contact. (Notifications are queued by the services that create
them, not by signals.)"""

from __future__ import annotations

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from notifications.models import UserContact


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_contact_for_new_user(
    sender, instance, created: bool, raw: bool = False, **kwargs
) -> None:
    if created and not raw:
        UserContact.objects.get_or_create(user=instance)
