"""Every new user gets a contact. (Notifications are queued by the services that create
them, not by signals.) SQLite connections use the variable limit of the SQLite loaded."""

from __future__ import annotations

import sqlite3

from django.conf import settings
from django.db.backends.signals import connection_created
from django.db.models.signals import post_save
from django.dispatch import receiver

from notifications.models import UserContact


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_contact_for_new_user(
    sender, instance, created: bool, raw: bool = False, **kwargs
) -> None:
    if created and not raw:
        UserContact.objects.get_or_create(user=instance)


@receiver(connection_created)
def use_sqlite_variable_limit(sender, connection, **kwargs) -> None:
    """Django 5.2 batches bulk inserts on SQLite for 999 variables, SQLite's limit before
    3.32; the SQLite loaded takes many more (32,766 or 250,000), so one campaign chunk is one
    INSERT, as on PostgreSQL."""
    if connection.vendor == "sqlite":
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        connection.features.max_query_params = max(limit, 999)
