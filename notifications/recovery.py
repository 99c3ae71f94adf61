"""Recovery from crashed workers and lost doorbells: what the sweeper decides.

``sweep()`` runs every minute in the consumer (``tasks.sweep``) and as ``manage.py sweep``:

- a row whose lease expired (its worker died mid-send) goes back to ``queued``, with a
  ``lease`` attempt recording the round its worker never recorded; if that round was its
  last (``NOTIFY_MAX_ROUNDS``), it ends ``failed`` instead, so a lease can never loop;
- waiting rows whose ``expires_at`` passed end ``expired``;
- the ids of due rows that waited longer than ``NOTIFY_SWEEP_STALE_SECONDS`` are returned,
  so the task layer can ring their doorbells again;
- items of a digest that ended without them end as it did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifications.delivery import CLAIMABLE, end_unclaimable
from notifications.models import DeliveryAttempt, Notification
from notifications.operations import metrics
from notifications.preferences import digests

Status = Notification.Status

LEASE_EXPIRED = (
    "lease expired: the worker stopped mid-send without recording the outcome; sent again "
    "(if the provider had accepted the first send, the recipient got it twice)"
)
LEASE_EXPIRED_LAST = (
    "lease expired in the last round (NOTIFY_MAX_ROUNDS): the worker stopped mid-send "
    "without recording the outcome; not sent again"
)


@dataclass
class SweepResult:
    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    digest_items: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "lease_expired": len(self.requeued),
            "failed": len(self.failed),
            "digest_items_settled": self.digest_items,
        }


def sweep(now: datetime | None = None) -> SweepResult:
    """Re-queue (or end) rows whose lease expired, and end expired waiting rows."""
    now = now or timezone.now()
    result = SweepResult()
    with transaction.atomic():
        rows = list(
            Notification.objects.filter(status=Status.SENDING, lease_expires_at__lt=now)
            .select_for_update(skip_locked=True)
            .values_list("pk", "rounds", "lease_expires_at")
        )
        for pk, rounds, _ in rows:
            (result.failed if rounds >= settings.NOTIFY_MAX_ROUNDS else result.requeued).append(pk)
        if result.requeued:
            Notification.objects.filter(pk__in=result.requeued).update(
                status=Status.QUEUED, lease_expires_at=None, next_attempt_at=now
            )
        if result.failed:
            Notification.objects.filter(pk__in=result.failed).update(
                status=Status.FAILED,
                lease_expires_at=None,
                next_attempt_at=None,
                last_error=LEASE_EXPIRED_LAST,
            )
        # The round its worker never recorded, so the attempts tell the operator why the
        # notification may have arrived twice.
        lost = DeliveryAttempt.objects.bulk_create(
            DeliveryAttempt(
                notification_id=pk,
                round=rounds,
                channel="",
                transport="lease",
                outcome=DeliveryAttempt.Outcome.AMBIGUOUS,
                error=(
                    error := LEASE_EXPIRED
                    if rounds < settings.NOTIFY_MAX_ROUNDS
                    else LEASE_EXPIRED_LAST
                ),
                reason=error,  # a fixed text: its own reason (notifications.reasons)
                started_at=lease,
            )
            for pk, rounds, lease in rows
        )
        transaction.on_commit(lambda: metrics.attempts_recorded(lost))
    waiting = Notification.objects.filter(status__in=CLAIMABLE).filter(
        Q(expires_at__lte=now) | Q(rounds__gte=settings.NOTIFY_MAX_ROUNDS)
    )
    ended = list(waiting.values_list("pk", flat=True)[:10_000])
    if ended:
        end_unclaimable(ended, now)
    # Items of a digest that ended without them (its worker died between the two writes, or
    # it ended expired or failed at claim): they end as it did.
    result.digest_items = digests.stranded()
    return result


def stale_due_ids(now: datetime | None = None) -> list[int]:
    """Due rows that waited longer than ``NOTIFY_SWEEP_STALE_SECONDS``: their doorbell was
    probably lost."""
    stale = (now or timezone.now()) - timedelta(seconds=settings.NOTIFY_SWEEP_STALE_SECONDS)
    return list(
        Notification.objects.filter(status__in=CLAIMABLE)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=stale))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)
    )
