"""What operators and code do with notifications: create, queue, resend, cancel, sweep.

The admin actions and the HTTP-facing code call these; tasks call ``delivery``. Each bulk
operation is a fixed number of queries whatever the selection's size: one count by status,
one conditional UPDATE, and one doorbell rung after commit.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from notifications.models import DeliveryAttempt, Notification

Status = Notification.Status

# Why a selected notification was left alone, by its status.
_LEFT_ALONE_REASONS = {
    Status.SENT: "already sent",
    Status.QUEUED: "already queued",
    Status.SENDING: "being sent",
    Status.CANCELLED: "cancelled",
    Status.FAILED: "failed",
    Status.PENDING: "not queued yet",
}


LEASE_EXPIRED = (
    "lease expired: the worker stopped mid-send without recording the outcome; sent again "
    "(if the provider had accepted the first send, the recipient got it twice)"
)


@dataclass
class BulkResult:
    """How many rows a bulk operation changed, and why it left the others alone."""

    changed: int = 0
    left_alone: Counter = field(default_factory=Counter)

    def describe(self, verb: str) -> str:
        """E.g. ``12 queued, 3 skipped: already sent``."""
        text = f"{self.changed} {verb}"
        if self.left_alone:
            reasons = ", ".join(
                f"{count} {_LEFT_ALONE_REASONS[status]}"
                for status, count in sorted(self.left_alone.items())
            )
            text += f", {sum(self.left_alone.values())} skipped: {reasons}"
        return text


def ring_doorbell(
    notification_ids: list[int] | None = None, *, eta: datetime | None = None
) -> None:
    """Tell the consumer there is work: for these ids, or (``None``) for every due row.

    Called after commit. The doorbell may be lost or rung twice; the claim makes both
    harmless and the sweeper rings again for rows that waited too long.
    """
    from notifications import tasks

    if notification_ids is None:
        tasks.dispatch_due()
        return
    for pk in notification_ids:
        if eta is None:
            tasks.deliver_notification(pk)
        else:
            tasks.deliver_notification.schedule(args=(pk,), eta=eta)


def _by_status(queryset: QuerySet[Notification]) -> Counter:
    rows = queryset.order_by().values("status").annotate(n=Count("pk"))
    return Counter({row["status"]: row["n"] for row in rows})


def _move_to_queued(
    queryset: QuerySet[Notification], from_statuses: set[str], *, reset: bool
) -> BulkResult:
    counts = _by_status(queryset)
    now = timezone.now()
    changes = {"status": Status.QUEUED, "queued_at": now, "next_attempt_at": now}
    if reset:
        changes.update(attempt_count=0, last_error="", channel="", sent_at=None)
    with transaction.atomic():
        changed = queryset.filter(status__in=from_statuses).update(**changes)
        if changed:
            transaction.on_commit(ring_doorbell)
    return BulkResult(
        changed=changed,
        left_alone=Counter({s: n for s, n in counts.items() if s not in from_statuses}),
    )


def notifications_queue(*, queryset: QuerySet[Notification]) -> BulkResult:
    """Queue the pending and failed notifications of ``queryset`` (failed ones start afresh)."""
    return _move_to_queued(queryset, {Status.PENDING, Status.FAILED}, reset=True)


def notifications_resend(*, queryset: QuerySet[Notification]) -> BulkResult:
    """Queue again, explicitly, notifications that were sent, failed, cancelled or pending."""
    return _move_to_queued(
        queryset, {Status.SENT, Status.FAILED, Status.CANCELLED, Status.PENDING}, reset=True
    )


def notifications_cancel(*, queryset: QuerySet[Notification]) -> BulkResult:
    """Cancel pending and queued notifications; one already being sent can't be stopped."""
    counts = _by_status(queryset)
    cancellable = {Status.PENDING, Status.QUEUED}
    changed = queryset.filter(status__in=cancellable).update(
        status=Status.CANCELLED, next_attempt_at=None
    )
    return BulkResult(
        changed=changed,
        left_alone=Counter({s: n for s, n in counts.items() if s not in cancellable}),
    )


def notification_create(
    *,
    user: AbstractBaseUser,
    message: str,
    subject: str = "",
    idempotency_key: str | None = None,
) -> Notification:
    """Create a notification (queued at once when ``NOTIFY_SEND_ON_CREATE``).

    With an ``idempotency_key`` seen before, returns that notification instead of a second one.
    Raises ``django.core.exceptions.ValidationError`` for an empty message.
    """
    notification = Notification(
        user=user, message=message, subject=subject, idempotency_key=idempotency_key or None
    )
    notification.full_clean(exclude=["idempotency_key"] if idempotency_key else None)
    if idempotency_key:
        existing = Notification.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                notification.save()
        except IntegrityError:  # created by a concurrent call with the same key
            return Notification.objects.get(idempotency_key=idempotency_key)
        return notification
    notification.save()
    return notification


def notifications_sweep() -> dict[str, int]:
    """Recover from crashed workers and lost doorbells.

    Rows whose lease expired (a worker died mid-send) go back to ``queued``; then, if the
    queue is empty, every row due for longer than ``NOTIFY_SWEEP_STALE_SECONDS`` gets its
    doorbell rung again. A busy queue is left to drain first: its rows are not lost, only
    waiting, and ringing them again would only add duplicates to skip.
    """
    from notifications.tasks import pending_in_queue

    now = timezone.now()
    expired = Notification.objects.filter(status=Status.SENDING, lease_expires_at__lt=now)
    with transaction.atomic():
        rows = list(
            expired.select_for_update(skip_locked=True).values_list(
                "pk", "attempt_count", "lease_expires_at"
            )
        )
        expired_ids = [pk for pk, _, _ in rows]
        requeued = 0
        if expired_ids:
            requeued = Notification.objects.filter(pk__in=expired_ids).update(
                status=Status.QUEUED, lease_expires_at=None, next_attempt_at=now
            )
            # The round its worker never recorded, so the attempts tell the operator why the
            # notification may have arrived twice.
            DeliveryAttempt.objects.bulk_create(
                DeliveryAttempt(
                    notification_id=pk,
                    round=round_number,
                    channel="",
                    transport="lease",
                    outcome=DeliveryAttempt.Outcome.TRANSIENT,
                    error=LEASE_EXPIRED,
                    started_at=lease,
                )
                for pk, round_number, lease in rows
            )
    to_ring = set(expired_ids)
    if pending_in_queue() == 0:
        stale = now - timedelta(seconds=settings.NOTIFY_SWEEP_STALE_SECONDS)
        to_ring.update(
            Notification.objects.filter(status=Status.QUEUED)
            .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=stale))
            .values_list("pk", flat=True)
        )
    ring_doorbell(sorted(to_ring))
    rung = len(to_ring)
    return {"lease_expired": requeued, "rung": rung}


def due_notification_ids() -> list[int]:
    """Ids of queued notifications that are due now, oldest first."""
    now = timezone.now()
    return list(
        Notification.objects.filter(status=Status.QUEUED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)
    )
