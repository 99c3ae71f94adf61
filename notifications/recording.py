"""Recording a round: the notification's new state and its attempts, written at once and
only while the round still owns the row (its lease), riding out a database restart.

``delivery`` decides and calls ``write_round`` once per round; nothing here calls a provider.
One statement on PostgreSQL (a data-modifying CTE: the attempts are inserted only if the row
was updated), one short transaction elsewhere.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connection, models, transaction

from notifications import receipts
from notifications.models import DeliveryAttempt, Notification
from notifications.operations import metrics

logger = logging.getLogger("notifications.delivery")

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome

# How long a worker that lost the database mid-delivery (a restart, a failover) keeps
# reconnecting to record what it did, before leaving the row to the sweeper.
DB_RETRY_SECONDS = 30.0

T = TypeVar("T")


def retrying_db(write: Callable[[], T]) -> T:
    """``write()``, run again on a fresh connection while the database is unreachable.

    Raises the last ``OperationalError``/``InterfaceError`` after ``DB_RETRY_SECONDS``.
    """
    deadline = time.monotonic() + DB_RETRY_SECONDS
    delay = 0.25
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError) as err:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("database unavailable (%s); retrying in %.2fs", err, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


@dataclass
class Round:
    """What one round writes: the row (``pk``, owned under ``lease``), its ``attempts``, and
    the attempt that succeeded with the provider's ids of its parts (``accepted``)."""

    pk: int
    lease: datetime
    attempts: list[DeliveryAttempt]
    success: DeliveryAttempt | None = None
    accepted: list[str] | None = None


def write_round(entry: Round, changes: dict[str, Any], *, rounds_back: bool = False) -> bool:
    """The round's attempts and the row's new ``changes``, at once, conditional on the lease
    (``rounds_back``: the round is not counted).

    False when the lease was lost (the attempts are kept) or the row is gone (nothing to
    keep them on). A send that succeeded on a row cancelled while it was in flight still
    records it as sent (``_sent_after_cancel``): the truth wins over the intent.
    """
    pk = entry.pk

    def write() -> int:
        if not changes:  # the row is not ours any more: only the attempts are kept
            updated = 0
        elif entry.success is not None and entry.success.transport in receipts.TRACKED_TRANSPORTS:
            # An SMS whose receipts are tracked: its attempt's id links its parts.
            with transaction.atomic():
                updated = _update_sql(entry, changes, rounds_back)
                if updated:
                    DeliveryAttempt.objects.bulk_create(entry.attempts)
                    _link_receipts(entry)
        elif connection.vendor == "postgresql":
            updated = _write_postgres(entry, changes, rounds_back)
        else:
            with transaction.atomic():
                updated = _update_sql(entry, changes, rounds_back)
                if updated:
                    _insert_attempts(entry.attempts)
        if not updated and Notification.objects.filter(pk=pk).exists():
            DeliveryAttempt.objects.bulk_create(entry.attempts)
            if entry.success is not None and changes:
                _sent_after_cancel(entry, changes)
        return updated

    # The provider may already have accepted the message: losing this write would send it
    # again after the lease expires, so ride out a database restart here.
    updated = retrying_db(write)
    metrics.attempts_recorded(entry.attempts)
    if changes and not updated:
        logger.warning("notification %s: lease lost or row gone; attempts kept if it exists", pk)
    return bool(updated)


def _sent_after_cancel(entry: Round, changes: dict[str, Any]) -> None:
    """A row cancelled while its send was in flight (the cancel keeps the lease it had)
    ends as what happened: sent."""
    done = Notification.objects.filter(
        pk=entry.pk, status=Status.CANCELLED, lease_expires_at=entry.lease
    ).update(**changes)
    if done:
        logger.info("notification %s was cancelled while its send was in flight: sent", entry.pk)
        if entry.success is not None and entry.success.transport in receipts.TRACKED_TRANSPORTS:
            _link_receipts(entry)


_ATTEMPT_FIELDS = [f for f in DeliveryAttempt._meta.concrete_fields if not f.primary_key]


@functools.cache
def _notification_column(vendor: str, name: str) -> tuple[str, Callable[[Any], Any]]:
    """A Notification field's quoted column and how its value goes to the database."""
    field = Notification._meta.get_field(name)
    ops = connection.ops
    if isinstance(field, models.DateTimeField):
        adapt = ops.adapt_datetimefield_value
    elif isinstance(field, (models.CharField, models.TextField, models.IntegerField)):
        adapt = _same
    else:
        adapt = functools.partial(field.get_db_prep_save, connection=connection)
    return ops.quote_name(field.column), adapt


def _update_parts(
    entry: Round, changes: dict[str, Any], rounds_back: bool
) -> tuple[str, list[Any]]:
    """The UPDATE of the row, conditional on the lease, as SQL and parameters."""
    vendor = connection.vendor
    params = [_notification_column(vendor, name)[1](value) for name, value in changes.items()]
    lease = _notification_column(vendor, "lease_expires_at")[1](entry.lease)
    sql = _update_text(vendor, tuple(changes), rounds_back)
    return sql, [*params, entry.pk, Status.SENDING, lease]


# The statements' texts, made once per shape (the columns changed, whether the round is
# given back, how many attempts) rather than quoted and joined again for every send: a
# round has few shapes, and building the text cost a third of the recording's CPU.
@functools.lru_cache(maxsize=256)
def _update_text(vendor: str, names: tuple[str, ...], rounds_back: bool) -> str:
    quote = connection.ops.quote_name
    assignments = [f"{_notification_column(vendor, name)[0]} = %s" for name in names]
    if rounds_back:
        assignments.append(f"{quote('rounds')} = {quote('rounds')} - 1")
    return (
        f"UPDATE {quote(Notification._meta.db_table)} SET {', '.join(assignments)} "
        f"WHERE {quote('id')} = %s AND {quote('status')} = %s AND "
        f"{quote('lease_expires_at')} = %s"
    )


def _update_sql(entry: Round, changes: dict[str, Any], rounds_back: bool) -> int:
    if not changes:
        return 0
    sql, params = _update_parts(entry, changes, rounds_back)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


@functools.cache
def _attempt_columns(vendor: str) -> list[tuple[str, str, Callable[[Any], Any]]]:
    """Each attempt column: its attribute, its SQL type, and how its value goes to the
    database (computed once per database vendor)."""
    ops = connection.ops
    columns = []
    for column in _ATTEMPT_FIELDS:
        if isinstance(column, models.DateTimeField):
            adapt = ops.adapt_datetimefield_value
        elif isinstance(column, models.DecimalField):
            adapt = functools.partial(
                ops.adapt_decimalfield_value,
                max_digits=column.max_digits,
                decimal_places=column.decimal_places,
            )
        elif isinstance(column, (models.CharField, models.TextField, models.IntegerField)):
            adapt = _same
        else:
            adapt = functools.partial(column.get_db_prep_save, connection=connection)
        columns.append((column.attname, column.db_type(connection), adapt))
    return columns


def _same(value: Any) -> Any:
    return value


def _attempt_params(vendor: str, attempts: list[DeliveryAttempt]) -> list[Any]:
    """The attempts' values, row after row, as the database takes them."""
    columns = _attempt_columns(vendor)
    return [adapt(getattr(attempt, name)) for attempt in attempts for name, _, adapt in columns]


@functools.lru_cache(maxsize=64)
def _attempt_rows(vendor: str, count: int, cast: bool) -> str:
    """``(…), (…)``: ``count`` rows of placeholders (cast to each column's type if ``cast``)."""
    columns = _attempt_columns(vendor)
    placeholders = ", ".join(f"%s::{sql_type}" if cast else "%s" for _, sql_type, _ in columns)
    return ", ".join([f"({placeholders})"] * count)


@functools.cache
def _insert_into(vendor: str) -> str:
    """``INSERT INTO`` the attempts' table with its columns, as both statements begin it."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in _ATTEMPT_FIELDS)
    return f"INSERT INTO {quote(DeliveryAttempt._meta.db_table)} ({columns})"


@functools.lru_cache(maxsize=64)
def _insert_text(vendor: str, count: int) -> str:
    return f"{_insert_into(vendor)} VALUES {_attempt_rows(vendor, count, cast=False)}"


def _insert_attempts(attempts: list[DeliveryAttempt]) -> None:
    if not attempts:
        return
    vendor = connection.vendor
    with connection.cursor() as cursor:
        cursor.execute(_insert_text(vendor, len(attempts)), _attempt_params(vendor, attempts))


@functools.lru_cache(maxsize=256)
def _write_text(names: tuple[str, ...], rounds_back: bool, count: int) -> str:
    """PostgreSQL's one statement: the row's UPDATE and, only if it changed the row, the
    INSERT of ``count`` attempts."""
    quote = connection.ops.quote_name
    return (
        f"WITH updated AS ({_update_text('postgresql', names, rounds_back)} "
        f"RETURNING {quote('id')}), "
        f"inserted AS ({_insert_into('postgresql')} "
        f"SELECT * FROM (VALUES {_attempt_rows('postgresql', count, cast=True)}) AS attempt "
        f"WHERE EXISTS (SELECT 1 FROM updated)) "
        f"SELECT count(*) FROM updated"
    )


def _write_postgres(entry: Round, changes: dict[str, Any], rounds_back: bool) -> int:
    update, params = _update_parts(entry, changes, rounds_back)
    with connection.cursor() as cursor:
        if not entry.attempts:
            cursor.execute(update, params)
            return cursor.rowcount
        sql = _write_text(tuple(changes), rounds_back, len(entry.attempts))
        cursor.execute(sql, [*params, *_attempt_params("postgresql", entry.attempts)])
        return cursor.fetchone()[0]


def _link_receipts(entry: Round) -> None:
    """Register the parts of the SMS just sent, so its receipts (some may have come already)
    can settle it: in the transaction that writes its attempt."""
    success = entry.success
    if success.pk is None:  # a database that returns no ids from a bulk insert
        success.pk = (
            DeliveryAttempt.objects.filter(
                notification_id=entry.pk,
                round=success.round,
                transport=success.transport,
                outcome=Outcome.SUCCESS,
            )
            .order_by("-pk")
            .values_list("pk", flat=True)
            .first()
        )
    receipts.link_parts(success, entry.accepted or [])
