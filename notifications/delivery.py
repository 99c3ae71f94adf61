"""Delivering one notification: claim → channel chain → record → outcome.

No transaction is open while a provider is called. The claim is one conditional UPDATE;
whoever changes the row owns the send until its lease expires. Every later write is
conditional on that same lease, so a worker whose lease was taken over cannot overwrite
the new owner's result.

The only window for a duplicate: a provider accepted the message and the worker died before
the final UPDATE committed (or the database stayed unreachable for longer than
``DB_RETRY_SECONDS`` after the send). The sweeper then re-queues the row when its lease
expires, recording the lost round as a "lease expired" attempt, and it is sent again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from notifications.channels import channel_closed_reason, channel_order, senders_for
from notifications.models import DeliveryAttempt, Notification, UserContact
from notifications.senders.base import DeliveryError, Sender, SendResult, SkipChannel

logger = logging.getLogger(__name__)

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome

# How long a worker that lost the database mid-delivery (a restart, a failover) keeps
# reconnecting to record what it did, before leaving the row to the sweeper.
DB_RETRY_SECONDS = 30.0

T = TypeVar("T")


def _retrying_db(write: Callable[[], T]) -> T:
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
    """What one pass over the channel chain did."""

    notification: Notification
    number: int
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    success: DeliveryAttempt | None = None
    transient: bool = False
    retry_after: float | None = None

    def record(
        self,
        channel: str,
        transport: str,
        outcome: str,
        *,
        started_at: datetime,
        error: str = "",
        duration_ms: int = 0,
        result: SendResult | None = None,
    ) -> DeliveryAttempt:
        attempt = DeliveryAttempt(
            notification=self.notification,
            round=self.number,
            channel=channel,
            transport=transport,
            outcome=outcome,
            error=error,
            provider_message_id=result.provider_message_id[:255] if result else "",
            started_at=started_at,
            duration_ms=duration_ms,
            cost=result.cost if result else None,
            segments=result.segments if result else None,
        )
        self.attempts.append(attempt)
        return attempt

    def summary(self) -> str:
        return "; ".join(
            f"{a.transport}: {a.error}" for a in self.attempts if a.outcome != Outcome.SUCCESS
        )


def retry_delay(round_number: int) -> float:
    """Exponential backoff with jitter: base·2^(round-1), capped, then 50–100% of that."""
    delay = settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** max(round_number - 1, 0)
    delay = min(delay, settings.NOTIFY_RETRY_MAX_SECONDS)
    return delay * random.uniform(0.5, 1.0)


def notification_claim(*, notification_id: int) -> Notification | None:
    """Take ownership of a queued, due notification; ``None`` when someone else has it.

    Returns the notification with user and contact loaded; its ``lease_expires_at`` is the
    lease every later write must match.
    """
    now = timezone.now()
    lease = now + timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)
    claimed = (
        Notification.objects.filter(pk=notification_id, status=Status.QUEUED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(status=Status.SENDING, lease_expires_at=lease, attempt_count=F("attempt_count") + 1)
    )
    if claimed != 1:
        return None
    return _retrying_db(
        lambda: Notification.objects.select_related("user__contact").get(pk=notification_id)
    )


def _contact_of(notification: Notification) -> UserContact:
    try:
        return notification.user.contact
    except UserContact.DoesNotExist:
        contact, _ = UserContact.objects.get_or_create(user=notification.user)
        return contact


def _usable_senders(
    channel: str, contact: UserContact, blocked: set[str]
) -> tuple[list[Sender], str]:
    """The configured senders of ``channel`` to try, or none and the reason it is skipped."""
    if channel in blocked:
        return [], "failed permanently in an earlier round"
    senders = [s for s in senders_for(channel) if s.is_configured()]
    if not senders:
        return [], "not configured"
    closed = channel_closed_reason(channel)
    if closed:
        return [], closed
    if getattr(contact, f"{channel}_opt_out", False):
        return [], "opted out"
    try:
        senders[0].recipient(contact)
    except SkipChannel as skip:
        return [], str(skip)
    return senders, ""


def _run_chain(notification: Notification, contact: UserContact) -> Round:
    current = Round(notification, notification.attempt_count)
    blocked: set[str] = set()
    if current.number > 1:
        blocked = set(
            notification.attempts.filter(outcome=Outcome.PERMANENT).values_list(
                "channel", flat=True
            )
        )
    for channel in channel_order():
        senders, reason = _usable_senders(channel, contact, blocked)
        if reason:
            current.record(
                channel, channel, Outcome.SKIPPED, error=reason, started_at=timezone.now()
            )
            continue
        for sender in senders:
            started_at = timezone.now()
            began = time.monotonic()
            try:
                result: SendResult = sender.send(contact, notification)
            except DeliveryError as err:
                elapsed = int((time.monotonic() - began) * 1000)
                if err.rate_limited:
                    outcome = Outcome.RATE_LIMITED
                    current.retry_after = max(current.retry_after or 0, err.retry_after or 0)
                elif err.permanent:
                    outcome = Outcome.PERMANENT
                else:
                    outcome = Outcome.TRANSIENT
                    current.transient = True
                current.record(
                    channel,
                    sender.transport,
                    outcome,
                    error=err.message,
                    started_at=started_at,
                    duration_ms=elapsed,
                )
                if err.rate_limited:
                    # Our pace, not the recipient's fault: retry this channel later rather
                    # than falling through to the next (possibly paid) one.
                    return current
                if err.permanent:
                    break  # this recipient can't get it on this channel: next channel
                continue  # transient: the channel's next transport, if any
            current.success = current.record(
                channel,
                sender.transport,
                Outcome.SUCCESS,
                started_at=started_at,
                duration_ms=int((time.monotonic() - began) * 1000),
                result=result,
            )
            return current
    return current


def _finish(notification: Notification, current: Round, **changes) -> bool:
    """Write the round's attempts and the notification's new state in one short transaction.

    Returns False when the lease was lost (the sweeper gave the row to another worker).
    """
    changes.setdefault("lease_expires_at", None)

    def write() -> int:
        with transaction.atomic():
            DeliveryAttempt.objects.bulk_create(current.attempts)
            return Notification.objects.filter(
                pk=notification.pk,
                status=Status.SENDING,
                lease_expires_at=notification.lease_expires_at,
            ).update(**changes)

    # The provider may already have accepted the message: losing this write would send it
    # again after the lease expires, so ride out a database restart here.
    updated = _retrying_db(write)
    if not updated:
        logger.warning(
            "notification %s: lease lost while sending; its attempts are recorded", notification.pk
        )
    return bool(updated)


def notification_deliver(*, notification_id: int) -> str | None:
    """Claim and deliver one notification; returns its new status, or None if not claimed."""
    notification = notification_claim(notification_id=notification_id)
    if notification is None:
        return None

    if not notification.message.strip():
        current = Round(notification, notification.attempt_count)
        _finish(notification, current, status=Status.FAILED, last_error="message is empty")
        return Status.FAILED

    contact = _contact_of(notification)
    current = _run_chain(notification, contact)

    if current.success is not None:
        _finish(
            notification,
            current,
            status=Status.SENT,
            channel=current.success.channel,
            sent_at=timezone.now(),
            next_attempt_at=None,
            last_error=current.summary(),
        )
        return Status.SENT

    from notifications.services import ring_doorbell

    if current.retry_after is not None:
        due = timezone.now() + timedelta(seconds=current.retry_after)
        _finish(
            notification,
            current,
            status=Status.QUEUED,
            next_attempt_at=due,
            attempt_count=F("attempt_count") - 1,  # being paced is not a failed round
            last_error=current.summary(),
        )
        ring_doorbell([notification.pk], eta=due)
        return Status.QUEUED

    if current.transient and current.number < settings.NOTIFY_MAX_ROUNDS:
        due = timezone.now() + timedelta(seconds=retry_delay(current.number))
        _finish(
            notification,
            current,
            status=Status.QUEUED,
            next_attempt_at=due,
            last_error=f"round {current.number}: {current.summary()}",
        )
        ring_doorbell([notification.pk], eta=due)
        return Status.QUEUED

    if all(a.outcome == Outcome.SKIPPED for a in current.attempts):
        reason = "no usable contact: " + current.summary()
    elif current.transient:
        reason = f"gave up after {current.number} rounds: {current.summary()}"
    else:
        reason = current.summary()
    _finish(
        notification,
        current,
        status=Status.FAILED,
        next_attempt_at=None,
        last_error=reason,
    )
    return Status.FAILED
