"""A campaign chunk's notifications, written in one statement.

A campaign's message is the same for every recipient: ``notification_build`` validates it once
(the chunk's first recipient), and each other recipient's row differs from that prototype only
in who gets it and when (``send_at`` at each one's local time, ``expires_at`` after it, queued
or scheduled). Building and validating a model per recipient was most of a million-recipient
campaign's time; here a row is a tuple.

On PostgreSQL the chunk is one ``INSERT … SELECT … FROM unnest(…) RETURNING id``: the
prototype's values are parameters once, the varying columns one typed array each, so the
statement's size and its parsing don't grow with the chunk. Elsewhere (SQLite), Django's
``bulk_create`` of models made from the prototype.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, models

from notifications.models import Notification

Status = Notification.Status
# What differs from one recipient's row to the next.
VARYING = ("user", "send_at", "expires_at", "status", "next_attempt_at")


@dataclass(frozen=True)
class Row:
    """One recipient's row: the prototype's, but for these."""

    user_id: int
    send_at: datetime | None
    expires_at: datetime | None
    status: str
    next_attempt_at: datetime | None


@functools.cache
def _columns() -> tuple[list[models.Field], list[models.Field]]:
    """The prototype's columns (every concrete one but the id and the varying ones), and
    the varying ones, in ``VARYING``'s order."""
    fields = [f for f in Notification._meta.concrete_fields if not f.primary_key]
    varying = [Notification._meta.get_field(name) for name in VARYING]
    return [f for f in fields if f not in varying], varying


def insert(prototype: Notification, rows: list[Row]) -> list[tuple[int, datetime | None]]:
    """Save one notification per row, each the prototype but for the row's values; returns
    (id, next_attempt_at) of each, in order. ``prototype`` is unsaved and validated."""
    if not rows:
        return []
    if connection.vendor == "postgresql":
        ids = _insert_postgres(prototype, rows)
    else:
        ids = _insert_models(prototype, rows)
    return [(pk, row.next_attempt_at) for pk, row in zip(ids, rows, strict=True)]


def prototype_values(
    prototype: Notification, fields: list[models.Field]
) -> tuple[list[str], list[Any]]:
    """The prototype's values of ``fields`` for an ``INSERT … SELECT``: the select list's
    placeholders (typed on PostgreSQL, where a bare parameter in a SELECT list has none) and
    their parameters."""
    postgres = connection.vendor == "postgresql"
    selected: list[str] = []
    params: list[Any] = []
    for field in fields:
        value = field.pre_save(prototype, add=True)
        params.append(field.get_db_prep_save(value, connection=connection))
        selected.append(f"%s::{field.db_type(connection)}" if postgres else "%s")
    return selected, params


def _insert_postgres(prototype: Notification, rows: list[Row]) -> list[int]:
    constant, varying = _columns()
    quote = connection.ops.quote_name
    selected, params = prototype_values(prototype, constant)
    arrays = [f"%s::{_array_type(field)}[]" for field in varying]
    selected.extend(f"v.c{i}" for i in range(len(varying)))
    values = [
        [row.user_id for row in rows],
        [row.send_at for row in rows],
        [row.expires_at for row in rows],
        [row.status for row in rows],
        [row.next_attempt_at for row in rows],
    ]
    columns = ", ".join(quote(f.column) for f in [*constant, *varying])
    sql = (
        f"INSERT INTO {quote(Notification._meta.db_table)} ({columns}) "
        f"SELECT {', '.join(selected)} FROM unnest({', '.join(arrays)}) "
        f"WITH ORDINALITY AS v({', '.join(f'c{i}' for i in range(len(varying)))}, n) "
        f"ORDER BY v.n RETURNING {quote('id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *values])
        # RETURNING gives the rows in the order they were inserted: the ORDER BY's.
        return [pk for (pk,) in cursor.fetchall()]


def _array_type(field: models.Field) -> str:
    """The SQL type of ``field``'s column (a foreign key's: its target's)."""
    return (
        field.target_field.rel_db_type(connection)
        if field.is_relation
        else field.db_type(connection)
    )


def _insert_models(prototype: Notification, rows: list[Row]) -> list[int]:
    constant, _varying = _columns()
    shared = {f.attname: f.pre_save(prototype, add=True) for f in constant}
    created = Notification.objects.bulk_create(
        [
            Notification(
                **shared,
                user_id=row.user_id,
                send_at=row.send_at,
                expires_at=row.expires_at,
                status=row.status,
                next_attempt_at=row.next_attempt_at,
            )
            for row in rows
        ]
    )
    return [n.pk for n in created]
