"""Frequency caps: at most ``cap_count`` notifications of a category per user per
``cap_window``, counted in the database so a cap holds across every consumer and host.

Windows are fixed, not sliding: a cap of whole days counts from the user's local midnight
(in their time zone), shorter ones from the hour, minute… on the UTC clock. A slot is taken
(one conditional UPDATE, ``count < cap``) before a round sends, and given back when the round
sends nothing, so a round that fails, waits or is rate limited costs no slot. A worker that
dies mid-send keeps its slot: a cap may under-send, never over-send.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, tzinfo

from django.db import IntegrityError, connection, transaction
from django.db.models import F

from notifications.preferences.models import CapCount, Category

DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_start(category: Category, now: datetime, where: tzinfo) -> datetime:
    """The start of the cap window ``now`` is in, for a user in ``where``."""
    window = category.cap_window
    if window % DAY == timedelta(0):
        days = window // DAY
        local = now.astimezone(where).date()
        first = local - timedelta(days=local.toordinal() % days)
        return datetime.combine(first, datetime.min.time(), tzinfo=where).astimezone(UTC)
    steps = (now - EPOCH) // window
    return EPOCH + steps * window


def window_end(category: Category, start: datetime, where: tzinfo) -> datetime:
    """When the window that began at ``start`` ends (local midnight for whole days)."""
    window = category.cap_window
    if window % DAY == timedelta(0):
        local = start.astimezone(where).date() + timedelta(days=window // DAY)
        return datetime.combine(local, datetime.min.time(), tzinfo=where).astimezone(UTC)
    return start + window


def reserve(user_id: int, category: Category, start: datetime) -> bool:
    """Take a slot of the window that began at ``start``; False when the cap is reached.
    One statement: an upsert that makes the window's row counting this send, or adds one to
    it while it is under the cap (PostgreSQL; SQLite 3.35+). Older SQLite: an UPDATE, and
    an INSERT for a window's first send."""
    if _upserts():
        return _reserve_upsert(user_id, category, start)
    row = CapCount.objects.filter(user_id=user_id, category=category, window_start=start)
    if row.filter(count__lt=category.cap_count).update(count=F("count") + 1):
        return True
    try:
        with transaction.atomic():
            CapCount.objects.create(user_id=user_id, category=category, window_start=start, count=1)
        return True  # (a cap is at least 1)
    except IntegrityError:
        pass  # the row was there (the cap reached), or a concurrent round made it just now
    return bool(row.filter(count__lt=category.cap_count).update(count=F("count") + 1))


def _upserts() -> bool:
    """Whether the database takes INSERT … ON CONFLICT DO UPDATE … RETURNING."""
    if connection.vendor == "postgresql":
        return True
    return connection.vendor == "sqlite" and sqlite3.sqlite_version_info >= (3, 35)


def _reserve_upsert(user_id: int, category: Category, start: datetime) -> bool:
    meta = CapCount._meta
    table = connection.ops.quote_name(meta.db_table)
    column = {f.name: connection.ops.quote_name(f.column) for f in meta.concrete_fields}
    user, cat, window, count = (column[n] for n in ("user", "category", "window_start", "count"))
    sql = (
        f"INSERT INTO {table} ({user}, {cat}, {window}, {count}) VALUES (%s, %s, %s, 1) "
        f"ON CONFLICT ({user}, {cat}, {window}) DO UPDATE SET {count} = {table}.{count} + 1 "
        f"WHERE {table}.{count} < %s RETURNING {count}"
    )
    when = connection.ops.adapt_datetimefield_value(start)
    with connection.cursor() as cursor:
        cursor.execute(sql, [user_id, category.pk, when, category.cap_count])
        return cursor.fetchone() is not None


def give_back(user_id: int, category_id: int, start: datetime) -> None:
    """Return a slot taken by a round that sent nothing."""
    CapCount.objects.filter(
        user_id=user_id, category_id=category_id, window_start=start, count__gt=0
    ).update(count=F("count") - 1)


def prune(now: datetime, keep: timedelta = timedelta(days=40)) -> int:
    """Forget counts of windows that began long ago (caps are at most 31 days)."""
    deleted, _ = CapCount.objects.filter(window_start__lt=now - keep).delete()
    return deleted
