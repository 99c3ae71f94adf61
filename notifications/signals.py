"""Receivers: every new user gets a contact; a notification code saves new through the ORM is
sent. SQLite connections use the variable limit of the SQLite loaded.

The top layer (beside the admin): it calls the services, which call the tasks.
"""

from __future__ import annotations

import sqlite3

from django.conf import settings
from django.db import transaction
from django.db.backends.signals import connection_created
from django.db.models.signals import post_save
from django.dispatch import receiver

from notifications import services
from notifications.models import Notification, UserContact
from notifications.operations import metrics


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_contact_for_new_user(
    sender, instance, created: bool, raw: bool = False, **kwargs
) -> None:
    if created and not raw:
        UserContact.objects.get_or_create(user=instance)


@receiver(post_save, sender=Notification)
def send_notification_saved_new(
    sender, instance: Notification, created: bool, raw: bool = False, **kwargs
) -> None:
    """``Notification.objects.create(user=u, message="…")`` — the plain Django way, and the
    original specification's — is queued when its transaction commits, and sent
    (``NOTIFY_SEND_ON_CREATE``, on by default). Saving it again sends nothing more; the
    services (``notification_create``, the admin, the API, campaigns) decide for the rows
    they make and ring themselves, so this leaves those alone. Fixtures (``raw``) are
    loaded as they are. ``bulk_create`` sends no signal (Django's rule): queue those with
    ``notifications_queue``."""
    if not created or raw or getattr(instance, "_built", False):
        return
    transaction.on_commit(lambda: metrics.notifications_created("orm", [instance]))
    if instance.status != Notification.Status.PENDING or not settings.NOTIFY_SEND_ON_CREATE:
        return
    services.notification_queue_saved(notification=instance)


@receiver(connection_created)
def use_sqlite_variable_limit(sender, connection, **kwargs) -> None:
    """Django 5.2 batches bulk inserts on SQLite for 999 variables, SQLite's limit before
    3.32; the SQLite loaded takes many more (32,766 or 250,000), so one campaign chunk is one
    INSERT, as on PostgreSQL."""
    if connection.vendor == "sqlite":
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        connection.features.max_query_params = max(limit, 999)
