"""What operators and code do with notifications: create, queue, resend, cancel, edit.

The admin actions, the admin's forms and the HTTP API call these; they queue through
``tasks.ring`` after their transaction commits. Each bulk operation is a fixed number of
queries whatever the selection's size: a count by status, one UPDATE, one read of the ids it
changed, whose doorbells (and only theirs) are rung after commit.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, F, QuerySet, Value, When
from django.utils import timezone

from notifications import selectors, tasks
from notifications.models import Notification, UserContact

Status = Notification.Status

# Why a selected notification was left alone, by its status.
LEFT_ALONE_REASONS = {
    Status.PENDING: "not queued yet",
    Status.SCHEDULED: "scheduled",
    Status.QUEUED: "already queued",
    Status.SENDING: "being sent",
    Status.SENT: "already sent",
    Status.DELIVERED: "delivered",
    Status.UNDELIVERED: "undelivered",
    Status.FAILED: "failed",
    Status.EXPIRED: "expired",
    Status.CANCELLED: "cancelled",
}
IDEMPOTENCY_KEY_MAX_LENGTH = Notification._meta.get_field("idempotency_key").max_length


@dataclass
class BulkResult:
    """How many rows a bulk operation changed, and why it left the others alone."""

    changed: int = 0
    left_alone: Counter = field(default_factory=Counter)

    def describe(self, verb: str) -> str:
        """E.g. ``12 queued, 3 skipped: 3 already sent``."""
        text = f"{self.changed} {verb}"
        if self.left_alone:
            reasons = ", ".join(
                f"{count} {LEFT_ALONE_REASONS[status]}"
                for status, count in sorted(self.left_alone.items())
            )
            text += f", {sum(self.left_alone.values())} skipped: {reasons}"
        return text


def _ring_after_commit(due: list[tuple[int, datetime | None]]) -> None:
    """After commit, ring now for the rows due now and at their time for scheduled ones."""
    if not due:
        return
    now = timezone.now()
    ready = [pk for pk, at in due if at is None or at <= now]
    later = [(pk, at) for pk, at in due if at is not None and at > now]

    def ring() -> None:
        if ready:
            tasks.ring(ready)
        for pk, at in later:
            tasks.ring([pk], eta=at)

    transaction.on_commit(ring)


def _move_to_queued(
    queryset: QuerySet[Notification], from_statuses: set[str], *, reset: bool
) -> BulkResult:
    counts = selectors.count_by_status(queryset)
    now = timezone.now()
    # Marks the rows this call changes, so only their doorbells are rung (a coincidence
    # with a concurrent call would only ring a few doorbells twice, which is harmless).
    stamp = now + timedelta(microseconds=random.randrange(1000))
    future = When(send_at__gt=now, then=F("send_at"))
    changes: dict[str, Any] = {
        "status": Case(
            When(send_at__gt=now, then=Value(Status.SCHEDULED)), default=Value(Status.QUEUED)
        ),
        "queued_at": stamp,
        "next_attempt_at": Case(future, default=Value(now)),
    }
    if reset:
        ttl = settings.NOTIFY_MESSAGE_TTL
        changes.update(rounds=0, last_error="", channel="", sent_at=None, progress={})
        if ttl:
            # A new run of one that expired gets a new lifetime.
            changes["expires_at"] = Case(
                When(expires_at__lte=now, then=Value(now + timedelta(seconds=ttl))),
                default=F("expires_at"),
            )
    with transaction.atomic():
        changed = queryset.filter(status__in=from_statuses).update(**changes)
        due: list[tuple[int, datetime | None]] = []
        if changed:
            due = list(
                Notification.objects.filter(
                    queued_at=stamp, status__in=(Status.QUEUED, Status.SCHEDULED)
                ).values_list("pk", "next_attempt_at")
            )
        _ring_after_commit(due)
    return BulkResult(
        changed=changed,
        left_alone=Counter({s: n for s, n in counts.items() if s not in from_statuses}),
    )


def notifications_queue(*, queryset: QuerySet[Notification]) -> BulkResult:
    """Queue the pending and failed notifications of ``queryset`` (failed ones start afresh:
    a new run, with no channel blocked by the last one)."""
    return _move_to_queued(queryset, {Status.PENDING, Status.FAILED}, reset=True)


RESENDABLE = {
    Status.SENT,
    Status.DELIVERED,
    Status.UNDELIVERED,
    Status.FAILED,
    Status.EXPIRED,
    Status.CANCELLED,
    Status.PENDING,
}


def notifications_resend(*, queryset: QuerySet[Notification]) -> BulkResult:
    """Queue again, explicitly, notifications that are done (sent or not) or pending."""
    return _move_to_queued(queryset, RESENDABLE, reset=True)


CANCELLABLE = {Status.PENDING, Status.SCHEDULED, Status.QUEUED}


def notifications_cancel(*, queryset: QuerySet[Notification]) -> BulkResult:
    """Cancel notifications still waiting; one already being sent can't be stopped."""
    counts = selectors.count_by_status(queryset)
    changed = queryset.filter(status__in=CANCELLABLE).update(
        status=Status.CANCELLED, next_attempt_at=None
    )
    return BulkResult(
        changed=changed,
        left_alone=Counter({s: n for s, n in counts.items() if s not in CANCELLABLE}),
    )


def _validate_channels(channels: list[str] | None) -> list[str]:
    if not channels:
        return []
    if not isinstance(channels, (list, tuple)) or not all(isinstance(c, str) for c in channels):
        raise ValidationError({"channels": "Give the channels as a list of names."})
    unknown = [c for c in channels if c not in settings.CHANNELS]
    if unknown:
        raise ValidationError(
            {
                "channels": f"Unknown channel {', '.join(map(repr, unknown))}; choose from "
                f"{', '.join(settings.CHANNELS)}."
            }
        )
    if len(set(channels)) != len(channels):
        raise ValidationError({"channels": "Name each channel at most once."})
    return list(channels)


def _validate_key(key: str | None) -> str | None:
    if key is None or key == "":
        return None
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ValidationError(
            {
                "idempotency_key": f"The idempotency key is {len(key)} characters long; at "
                f"most {IDEMPOTENCY_KEY_MAX_LENGTH} are allowed."
            }
        )
    if "\x00" in key:
        raise ValidationError({"idempotency_key": "The idempotency key contains a NUL character."})
    return key


def _validate_times(
    now: datetime, send_at: datetime | None, expires_at: datetime | None
) -> datetime | None:
    """The expiry to store: ``expires_at``, else ``NOTIFY_MESSAGE_TTL`` after sending starts."""
    for name, value in (("send_at", send_at), ("expires_at", expires_at)):
        if value is not None and timezone.is_naive(value):
            raise ValidationError({name: "Give a time with its time zone."})
    start = max(send_at or now, now)
    if expires_at is not None:
        if expires_at <= start:
            raise ValidationError(
                {"expires_at": "The expiry must be after the time the notification is sent."}
            )
        return expires_at
    ttl = settings.NOTIFY_MESSAGE_TTL
    return start + timedelta(seconds=ttl) if ttl else None


def validate_options(
    *,
    channels: list[str] | None = None,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
    checking_expiry: bool = True,
) -> None:
    """The checks ``notification_create`` makes of its options, for forms; raises
    ``ValidationError``."""
    _validate_channels(channels)
    if checking_expiry:
        _validate_times(timezone.now(), send_at, expires_at)


def notification_build(
    *,
    user: AbstractBaseUser,
    message: str,
    subject: str = "",
    channels: list[str] | None = None,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
    idempotency_key: str | None = None,
    queue: bool | None = None,
    now: datetime | None = None,
) -> Notification:
    """A validated, unsaved notification (what ``notification_create`` saves).

    ``queue``: queued (or scheduled) at once; default ``NOTIFY_SEND_ON_CREATE``. Raises
    ``ValidationError`` with a message per field.
    """
    now = now or timezone.now()
    key = _validate_key(idempotency_key)
    notification = Notification(
        user=user,
        message=message,
        subject=subject or "",
        channels=_validate_channels(channels),
        send_at=send_at,
        expires_at=_validate_times(now, send_at, expires_at),
        idempotency_key=key,
    )
    # The table's check constraint repeats validate_message; checking it here would cost a
    # query per notification (a batch of 1,000 would make 1,000 round trips).
    notification.full_clean(
        exclude=["idempotency_key", "user"] if key else ["user"], validate_constraints=False
    )
    if queue if queue is not None else settings.NOTIFY_SEND_ON_CREATE:
        later = send_at is not None and send_at > now
        notification.status = Status.SCHEDULED if later else Status.QUEUED
        notification.queued_at = now
        notification.next_attempt_at = send_at if later else now
    return notification


def notification_create(
    *,
    user: AbstractBaseUser,
    message: str,
    subject: str = "",
    channels: list[str] | None = None,
    send_at: datetime | None = None,
    expires_at: datetime | None = None,
    idempotency_key: str | None = None,
    queue: bool | None = None,
) -> Notification:
    """Create a notification, queued when the transaction commits (``NOTIFY_SEND_ON_CREATE``,
    or ``queue``), or scheduled for ``send_at``.

    ``channels``: the chain for this notification only (a subset of telegram, email, sms, in
    the order to try). ``expires_at``: never delivered after it (default: NOTIFY_MESSAGE_TTL
    after it is due). With an ``idempotency_key`` seen before, returns that notification
    instead of a second one. Raises ``django.core.exceptions.ValidationError`` (an empty or
    over-long message, NUL characters, a multi-line subject, an over-long key, …).
    """
    notification = notification_build(
        user=user,
        message=message,
        subject=subject,
        channels=channels,
        send_at=send_at,
        expires_at=expires_at,
        idempotency_key=idempotency_key,
        queue=queue,
    )
    if notification.idempotency_key:
        existing = Notification.objects.filter(idempotency_key=notification.idempotency_key).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                notification.save()
                _ring_after_commit(_due_of([notification]))
        except IntegrityError:  # created by a concurrent call with the same key
            return Notification.objects.get(idempotency_key=notification.idempotency_key)
        return notification
    with transaction.atomic():
        notification.save()
        _ring_after_commit(_due_of([notification]))
    return notification


def _due_of(notifications: list[Notification]) -> list[tuple[int, datetime | None]]:
    return [
        (n.pk, n.next_attempt_at)
        for n in notifications
        if n.status in (Status.QUEUED, Status.SCHEDULED)
    ]


def notifications_save_new(notifications: list[Notification]) -> list[Notification]:
    """Save validated notifications (``notification_build``) in one bulk insert and ring
    their doorbells after commit."""
    with transaction.atomic():
        created = Notification.objects.bulk_create(notifications)
        _ring_after_commit(_due_of(created))
    return created


EDITABLE_FIELDS = ("user", "subject", "message", "channels", "send_at", "expires_at")


def notification_update_pending(*, notification: Notification, fields: list[str]) -> bool:
    """Save the editable ``fields`` of a notification that is still ``pending``; only those
    columns, and only while it is pending (a worker's writes are never overwritten).

    Returns False when it was no longer pending. Raises ``ValidationError``.
    """
    fields = [f for f in fields if f in EDITABLE_FIELDS]
    notification.full_clean(
        exclude=[f.name for f in Notification._meta.fields if f.name not in fields]
    )
    if not fields:
        return Notification.objects.filter(pk=notification.pk, status=Status.PENDING).exists()
    values = {name: getattr(notification, name) for name in fields}
    if "user" in values:
        values["user_id"] = values.pop("user").pk
    return bool(
        Notification.objects.filter(pk=notification.pk, status=Status.PENDING).update(**values)
    )


CONTACT_FIELDS = (
    "telegram_chat_id",
    "email",
    "phone",
    "telegram_opt_out",
    "email_opt_out",
    "sms_opt_out",
)


def user_contact_update(*, contact: UserContact, changes: dict[str, Any]) -> UserContact:
    """Set the given contact fields, with the admin's validation (the model's validators and
    ``clean``: phone numbers stored as E.164), and save them. Raises ``ValidationError``
    with a message per field."""
    unknown = set(changes) - set(CONTACT_FIELDS)
    if unknown:
        raise ValidationError({name: "This field can't be changed." for name in sorted(unknown)})
    for name, value in changes.items():
        setattr(contact, name, value)
    contact.full_clean(exclude=["user"])
    if contact.pk is None:  # a user created before contacts existed
        contact.pk = UserContact.objects.get_or_create(user_id=contact.user_id)[0].pk
        contact._state.adding = False
    contact.save(update_fields=[*CONTACT_FIELDS, "updated_at"])
    return contact
