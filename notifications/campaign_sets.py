"""A campaign chunk's surely reachable recipients, created by one set-based statement.

Building a model per recipient, and checking each one's contact, preferences and suppressions
in Python, held a campaign's creation to a few thousand recipients a second. For a campaign's
message (the same text for everyone, sent at one time: no template, no local send time) a
step instead takes ``CHUNKS`` × ``NOTIFY_CAMPAIGN_CHUNK`` recipient ids and inserts, in one
``INSERT … SELECT … RETURNING``, the notification of each of them that SQL finds surely
reachable: some channel of the campaign's chain with a sender, not opted out, not turned off
for the category (``preferences``), and with an address as that channel's first sender reads
it. Whoever SQL does not take (no contact, no address, opted out, an email address while
some address is suppressed…) goes through the per-recipient check in Python
(``composing.unreachable``), which makes their notification or their skip with its reason,
as before. The SQL condition therefore only has to be *sufficient*: it takes no one Python
would skip, and the complement is worked out in Python from the ids, so no recipient falls
between the two (SQL's NULLs cannot lose one).

A sender whose ``address`` this module does not know (a project's own) adds nothing to the
condition: its channel is left to Python.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import DatabaseError, connection, transaction

from notifications import campaign_rows
from notifications.channels import channel_order, senders_for
from notifications.models import Notification, UserContact
from notifications.preferences.models import Category, Preference
from notifications.senders.email import EmailSender
from notifications.senders.sms import SmsSender
from notifications.senders.telegram import TelegramSender

logger = logging.getLogger(__name__)

# A campaign's creation that made this many notifications ends by refreshing PostgreSQL's
# statistics of their table (``analyze_after``).
ANALYZE_FROM = 50_000

# A set-based step takes this many NOTIFY_CAMPAIGN_CHUNKs of recipients: a statement and a
# commit per 10,000 (a step holds the campaign's row while it runs, a fraction of a second).
CHUNKS = 10


@dataclass(frozen=True)
class Reach:
    """The SQL condition, over ``u`` (the user) and ``c`` (their contact, LEFT JOINed),
    that some channel of a campaign's chain surely reaches the user; and its parameters."""

    sql: str
    params: tuple[Any, ...]


def supported() -> bool:
    """Whether this database can insert a set and return its rows (SQLite ≥ 3.35 can)."""
    return bool(connection.features.can_return_rows_from_bulk_insert)


def reach_for(
    channels: list[str] | None, category: Category, *, addresses_suppressed: bool
) -> Reach | None:
    """The condition for a campaign's chain and category; None when SQL can be sure of no
    channel (then the campaign is created the per-recipient way). ``addresses_suppressed``:
    some email address is suppressed, so SQL is sure of no email address (suppressions
    compare addresses as Python normalizes them)."""
    contact = UserContact._meta
    opted_out = {
        "telegram": contact.get_field("telegram_opt_out").column,
        "email": contact.get_field("email_opt_out").column,
        "sms": contact.get_field("sms_opt_out").column,
    }
    parts: list[str] = []
    params: list[Any] = []
    for channel in channel_order(channels):
        senders = senders_for(channel)
        if not senders:
            continue
        address = _address_sql(senders[0], addresses_suppressed=addresses_suppressed)
        if address is None:
            continue
        column = opted_out[channel]
        # No contact row: no opt-out (only email has an address then: the user's own).
        condition = [f"(c.{column} IS NULL OR NOT c.{column})", f"({address})"]
        if not category.required:
            turned = _preference_sql()
            default = category.channel_default(channel)
            # A user's choice overrides the category's default for the channel.
            condition.append(f"NOT EXISTS ({turned})" if default else f"EXISTS ({turned})")
            params.extend([category.pk, channel, not default])
        parts.append(" AND ".join(condition))
    if not parts:
        return None
    return Reach(sql=" OR ".join(f"({part})" for part in parts), params=tuple(params))


def _address_sql(sender: object, *, addresses_suppressed: bool) -> str | None:
    """SQL true only where ``sender.address(contact)`` returns an address (and, for email,
    none that could be suppressed); None for a sender this module does not know."""
    contact = UserContact._meta
    method = type(sender).address
    if method is TelegramSender.address:
        chat = contact.get_field("telegram_chat_id").column
        blocked = contact.get_field("telegram_blocked").column
        return f"c.{chat} <> '' AND NOT c.{blocked}"
    if method is SmsSender.address:
        return f"c.{contact.get_field('phone').column} <> ''"
    if method is EmailSender.address and not addresses_suppressed:
        # ``contact.effective_email.strip()`` is not empty: an "@" is enough to be sure.
        own = contact.get_field("email").column
        User = get_user_model()
        email_field = User.get_email_field_name()
        try:
            fallback = f"u.{User._meta.get_field(email_field).column}"
        except FieldDoesNotExist:  # a user model without an email field: the contact's alone
            fallback = "''"
        return f"COALESCE(NULLIF(c.{own}, ''), {fallback}) LIKE '%%@%%'"
    return None


def _preference_sql() -> str:
    preference = Preference._meta
    column = preference.get_field
    return (
        f"SELECT 1 FROM {preference.db_table} AS p "
        f"WHERE p.{column('user').column} = u.{_user_pk()} "
        f"AND p.{column('category').column} = %s AND p.{column('channel').column} = %s "
        f"AND p.{column('enabled').column} = %s"
    )


def _user_pk() -> str:
    return get_user_model()._meta.pk.column


def insert(prototype: Notification, user_ids: list[int], reach: Reach) -> list[tuple[int, int]]:
    """Save the prototype's notification for each of ``user_ids`` that ``reach`` takes, in
    one statement; returns (notification id, user id) of each saved. ``prototype`` is unsaved
    and validated; every column but the user is its."""
    if not user_ids:
        return []
    postgres = connection.vendor == "postgresql"
    quote = connection.ops.quote_name
    fields = [
        f for f in Notification._meta.concrete_fields if not f.primary_key and f.name != "user"
    ]
    selected, params = campaign_rows.prototype_values(prototype, fields)
    User = get_user_model()
    pk = _user_pk()
    user_column = Notification._meta.get_field("user").column
    among = (
        f"u.{pk} = ANY(%s::bigint[])"
        if postgres
        else f"u.{pk} IN (SELECT value FROM json_each(%s))"
    )
    contact_user = UserContact._meta.get_field("user").column
    columns = ", ".join(quote(f.column) for f in [*fields, Notification._meta.get_field("user")])
    # The ids' range bounds both sides, the contacts' too (in the join's condition, so a
    # user without one is still joined to none): a step's ids are most often a run of the
    # audience in id order, and both tables are then read as one range of their index each,
    # merged. Without the contacts' bound PostgreSQL read every contact of the table for
    # each step (a hash join): two thirds of the statement's time at a million users.
    sql = (
        f"INSERT INTO {quote(Notification._meta.db_table)} ({columns}) "
        f"SELECT {', '.join(selected)}, u.{pk} "
        f"FROM {quote(User._meta.db_table)} AS u "
        f"LEFT JOIN {quote(UserContact._meta.db_table)} AS c "
        f"ON c.{contact_user} = u.{pk} AND c.{contact_user} BETWEEN %s AND %s "
        f"WHERE u.{pk} BETWEEN %s AND %s AND {among} AND ({reach.sql}) ORDER BY u.{pk} "
        f"RETURNING {quote('id')}, {quote(user_column)}"
    )
    bounds = [min(user_ids), max(user_ids)]
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                *params,
                *bounds,
                *bounds,
                list(user_ids) if postgres else json.dumps(user_ids),
                *reach.params,
            ],
        )
        return [(notification, user) for notification, user in cursor.fetchall()]


def analyze_after(created: int) -> bool:
    """After a campaign's creation that made ``created`` notifications: on PostgreSQL, if
    that is ``ANALYZE_FROM`` or more, refresh the planner's statistics of their table, as
    PostgreSQL advises after a bulk load. Returns whether it did.

    A million rows made in a minute double a table whose statistics (autovacuum's, which
    comes a minute or more later, or never where it is off) still say none of its rows is
    waiting: PostgreSQL then took "status is waiting" for the narrow condition and read the
    whole table through the status index for each 10,000 of a "Cancel the rest" (0.64 s a
    chunk alone, against 0.37 s with the statistics refreshed). The refresh reads a sample
    of the table (~0.3 s at a million rows); where the service does not own the table
    PostgreSQL skips it with a warning in its own log, and a lock held by another
    ``ANALYZE`` is waited for at most 10 s, then left to autovacuum."""
    if created < ANALYZE_FROM or connection.vendor != "postgresql":
        return False
    table = connection.ops.quote_name(Notification._meta.db_table)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '10s'")
            cursor.execute(f"ANALYZE {table}")
    except DatabaseError as err:
        logger.warning("the statistics of %s were not refreshed: %s", table, err)
        return False
    return True
