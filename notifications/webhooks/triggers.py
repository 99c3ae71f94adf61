"""The outbox's database triggers: a notification's status change writes its webhook event
in the same statement, wherever in the code the change is made (a round recorded, a claim,
a cancel, the sweeper, a receipt, a preference, a digest, a suppression).

``AFTER UPDATE OF status`` (and ``AFTER INSERT``, for a row created already final), for each
row whose status changed to one of ``NOTIFICATION_EVENT_STATUSES``:

- when an enabled endpoint wants ``notification.<status>`` (a lookup in the endpoints' tiny
  table), one ``webhooks_webhookevent`` row with the notification's state as it is now (the
  lane then makes a delivery per endpoint that wants it: ``outbox.fan_out``);
- when the notification belongs to a campaign and an enabled endpoint wants
  ``campaign.finished``, the campaign is watched (``webhooks_campaignwatch``), once.

Nothing happens when no endpoint wants it, so the trigger costs the delivery path a look at
a table of a few rows per final change; when one does, one row more in the same commit (on
PostgreSQL, with its entry in the partial index of events to fan out): every further table
or index written there is a page more per notification on SQLite's single writer. A DELETE
fires nothing (retention), nor does an UPDATE that leaves the status as it was.

On SQLite the event is written already ``fanned_out``, so it never enters that index: the
lane fans out there by a high-water mark (``WebhookFanOutMark``, ``outbox.fan_out``), which
one writer at a time makes sound, and never rewrites the event. (Flagged rather than the
index dropped on SQLite alone: the schema stays the model's on both, and the insert writes
the table's page only either way.) Until the mark's migration
(``0003``) has made its table, the trigger writes ``fanned_out = 0`` as before, so a rollback
past it puts the flag back (``install`` picks by the table).

PostgreSQL runs one PL/pgSQL function (``to_json`` of timestamps gives ISO 8601 in the
session's zone, which Django sets to UTC); SQLite repeats the body in each trigger, with
``json_object`` and times as Django stores them there (``YYYY-MM-DD HH:MM:SS.fff``, UTC).
``payloads`` reads both the same way. SQLite drops a table's triggers when a migration
rebuilds the table, so ``reinstall`` puts them back after every ``migrate``.
"""

from __future__ import annotations

from typing import Any

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

NOTIFICATION = "notifications_notification"
ENDPOINT = "webhooks_webhookendpoint"
EVENT = "webhooks_webhookevent"
WATCH = "webhooks_campaignwatch"
MARK = "webhooks_webhookfanoutmark"
CATEGORY = "preferences_category"
# The same statuses as ``models.NOTIFICATION_EVENT_STATUSES`` (a test holds them equal); here
# so that this module needs no model loaded.
STATUSES = ("sent", "delivered", "undelivered", "failed", "expired", "cancelled", "suppressed")
_IN = ", ".join(f"'{status}'" for status in STATUSES)
# The snapshot's keys, each from a column of the row (``payloads.KEYS`` orders them).
COLUMNS = (
    ("id", "id"),
    ("user", "user_id"),
    ("status", "status"),
    ("channel", "channel"),
    ("channels", "channels"),
    ("created_at", "created_at"),
    ("queued_at", "queued_at"),
    ("send_at", "send_at"),
    ("expires_at", "expires_at"),
    ("next_attempt_at", "next_attempt_at"),
    ("sent_at", "sent_at"),
    ("rounds", "rounds"),
    ("last_error", "last_error"),
    ("digest_key", "digest_key"),
    ("digest", "digest_id"),
    ("campaign", "campaign_id"),
    ("idempotency_key", "idempotency_key"),
)
CATEGORY_KEY = f'(SELECT c."key" FROM {CATEGORY} c WHERE c.id = NEW.category_id)'

# --- PostgreSQL ---------------------------------------------------------------------------------
PG_FUNCTION = "webhooks_notification_event"
_PG_SNAPSHOT = ", ".join(
    [f"'{key}', NEW.{column}" for key, column in COLUMNS] + [f"'category', {CATEGORY_KEY}"]
)
PG_CREATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $body$
DECLARE
    kind text := 'notification.' || NEW.status;
    wanted boolean;
    finished boolean;
BEGIN
    -- One look at the endpoints for both questions: each query here is an executor's start
    -- for each row a statement changes (a million when the rest of a campaign is cancelled).
    SELECT coalesce(bool_or(e.event_types ? kind), false),
           coalesce(bool_or(e.event_types ? 'campaign.finished'), false)
      INTO wanted, finished
      FROM {ENDPOINT} e WHERE e.enabled;
    IF wanted THEN
        INSERT INTO {EVENT} (type, notification_id, campaign_id, data, created_at, fanned_out)
        VALUES (kind, NEW.id, NEW.campaign_id, jsonb_build_object({_PG_SNAPSHOT}),
                clock_timestamp(), false);
    END IF;
    IF finished AND NEW.campaign_id IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM {WATCH} w WHERE w.campaign_id = NEW.campaign_id) THEN
            INSERT INTO {WATCH} (campaign_id, created_at)
            VALUES (NEW.campaign_id, clock_timestamp()) ON CONFLICT DO NOTHING;
        END IF;
    END IF;
    RETURN NULL;
END
$body$
"""
PG_TRIGGERS = {
    "webhooks_notification_status": (
        f"AFTER UPDATE OF status ON {NOTIFICATION} FOR EACH ROW "
        f"WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ({_IN}))"
    ),
    "webhooks_notification_created": (
        f"AFTER INSERT ON {NOTIFICATION} FOR EACH ROW WHEN (NEW.status IN ({_IN}))"
    ),
}

# --- SQLite ---------------------------------------------------------------------------------
_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
_SQLITE_SNAPSHOT = ", ".join(
    [
        f"'{key}', json(NEW.{column})" if key == "channels" else f"'{key}', NEW.{column}"
        for key, column in COLUMNS
    ]
    + [f"'category', {CATEGORY_KEY}"]
)


def _wants(kind: str) -> str:
    """SQLite: endpoint ``e`` is enabled and wants events of ``kind`` (an SQL expression)."""
    return f"e.enabled AND EXISTS (SELECT 1 FROM json_each(e.event_types) t WHERE t.value = {kind})"


_KIND = "'notification.' || NEW.status"


def _sqlite_body(by_mark: bool) -> str:
    """The SQLite triggers' body; ``by_mark``: the event is written ``fanned_out`` (the lane
    goes by ``WebhookFanOutMark``), else not (the lane goes by the flag)."""
    return f"""
BEGIN
    INSERT INTO {EVENT} (type, notification_id, campaign_id, data, created_at, fanned_out)
    SELECT {_KIND}, NEW.id, NEW.campaign_id, json_object({_SQLITE_SNAPSHOT}), {_NOW}, {int(by_mark)}
    WHERE EXISTS (SELECT 1 FROM {ENDPOINT} e WHERE {_wants(_KIND)});
    INSERT OR IGNORE INTO {WATCH} (campaign_id, created_at)
    SELECT NEW.campaign_id, {_NOW}
    WHERE NEW.campaign_id IS NOT NULL
      AND EXISTS (SELECT 1 FROM {ENDPOINT} e WHERE {_wants("'campaign.finished'")});
END"""


_ANY_ENABLED = f"EXISTS (SELECT 1 FROM {ENDPOINT} WHERE enabled)"
SQLITE_TRIGGERS = {
    "webhooks_notification_status": (
        f"AFTER UPDATE OF status ON {NOTIFICATION} FOR EACH ROW "
        f"WHEN OLD.status IS NOT NEW.status AND NEW.status IN ({_IN}) AND {_ANY_ENABLED}"
    ),
    "webhooks_notification_created": (
        f"AFTER INSERT ON {NOTIFICATION} FOR EACH ROW WHEN NEW.status IN ({_IN}) AND {_ANY_ENABLED}"
    ),
}


def _sqlite_sql(name: str, by_mark: bool = True) -> str:
    return f"CREATE TRIGGER {name} {SQLITE_TRIGGERS[name]}{_sqlite_body(by_mark)}"


def install(connection: BaseDatabaseWrapper, by_mark: bool | None = None) -> None:
    """Create the triggers (and PostgreSQL's function) where missing or out of date. On
    SQLite, ``by_mark`` picks the events' ``fanned_out`` (see the module's docstring); by
    default, whether the mark's table exists."""
    if connection.vendor == "sqlite" and by_mark is None:
        by_mark = MARK in connection.introspection.table_names()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(PG_CREATE_FUNCTION)
            for name, when in PG_TRIGGERS.items():
                cursor.execute(
                    "SELECT 1 FROM pg_trigger WHERE tgname = %s AND NOT tgisinternal", [name]
                )
                if cursor.fetchone() is None:
                    cursor.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION {PG_FUNCTION}()")
        elif connection.vendor == "sqlite":
            for name in SQLITE_TRIGGERS:
                cursor.execute(
                    "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = %s", [name]
                )
                row = cursor.fetchone()
                sql = _sqlite_sql(name, bool(by_mark))
                if row is not None and row[0] == sql:
                    continue
                if row is not None:
                    cursor.execute(f"DROP TRIGGER {name}")
                cursor.execute(sql)


def uninstall(connection: BaseDatabaseWrapper) -> None:
    """Drop the triggers (and the function)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for name in PG_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name} ON {NOTIFICATION}")
            cursor.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")
        elif connection.vendor == "sqlite":
            for name in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")


def installed(connection: BaseDatabaseWrapper) -> set[str]:
    """The names of this module's triggers the database has."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'webhooks_%%' AND NOT tgisinternal"
            )
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'webhooks_%%'"
            )
        return {row[0] for row in cursor.fetchall()}


def reinstall(sender: Any = None, using: str = "default", **kwargs: Any) -> None:
    """``post_migrate`` receiver: the triggers, if the outbox's tables exist."""
    connection = connections[using]
    if {ENDPOINT, EVENT, WATCH} <= set(connection.introspection.table_names()):
        install(connection)
