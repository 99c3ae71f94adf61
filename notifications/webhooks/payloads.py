"""What a webhook says: the JSON body of an event, the same bytes on every try.

::

    {"type": "notification.delivered",
     "timestamp": "2026-12-06T10:15:02.123456Z",
     "data": {"id": 42, "user": 7, "status": "delivered", "channel": "sms", …,
              "version": 1234}}

``data`` of a notification event is the notification's state when its status changed (as
``GET /api/v1/notifications/{id}`` shows it, without the message and the attempts), with
``version``: the event's id, larger for every later change of the same notification, so a
client keeps the state with the largest version it has seen and drops the others (events may
arrive more than once, and out of order). ``data`` of ``campaign.finished`` is the campaign,
its notifications counted by final status.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Protocol

# The keys of a notification's data, in order (the triggers write them in any order).
NOTIFICATION_KEYS = (
    "id",
    "user",
    "status",
    "channel",
    "channels",
    "category",
    "campaign",
    "digest",
    "digest_key",
    "idempotency_key",
    "created_at",
    "queued_at",
    "send_at",
    "expires_at",
    "next_attempt_at",
    "sent_at",
    "rounds",
    "last_error",
)
TIMES = frozenset(
    {"created_at", "queued_at", "send_at", "expires_at", "next_attempt_at", "sent_at"}
)


class Event(Protocol):
    """What a body is made of (a ``WebhookEvent``)."""

    pk: int
    type: str
    data: dict[str, Any]
    created_at: datetime


def utc_text(value: datetime | str | None) -> str | None:
    """A time as ``2026-12-06T10:15:02.123456Z``, from a datetime or the text either database
    wrote (``2026-12-06 10:15:02.123`` from SQLite, ``…+00:00`` from PostgreSQL)."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def notification_data(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A trigger's snapshot as the API names and shows it (times in UTC, no channel: null)."""
    data = {key: snapshot.get(key) for key in NOTIFICATION_KEYS}
    for key in TIMES:
        data[key] = utc_text(data[key])
    data["channel"] = data["channel"] or None
    data["channels"] = data["channels"] or []
    data["digest_key"] = data["digest_key"] or ""
    data["last_error"] = data["last_error"] or ""
    return data


def payload(event: Event) -> dict[str, Any]:
    """The body of ``event``'s webhooks, as a dict."""
    data = notification_data(event.data) if event.type.startswith("notification.") else event.data
    return {
        "type": event.type,
        "timestamp": utc_text(event.created_at),
        "data": {**data, "version": event.pk},
    }


def body(event: Event) -> bytes:
    """The body of ``event``'s webhooks: compact UTF-8 JSON, the same bytes every time."""
    return json.dumps(payload(event), ensure_ascii=False, separators=(",", ":")).encode()
