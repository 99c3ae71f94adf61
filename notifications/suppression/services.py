"""Suppressing an email address, lifting a suppression, and what the policy step reads.

Below the senders (the email sender records an SMTP server's "user unknown" here), so this
module imports only the package's models and the metrics.

The email channel's skip reason says why and since when, in English (it is data, like every
attempt's error; ``notifications.display`` shows it in the operator's language):
``suppressed: hard bounce on 3 Dec`` (with the year when it is not this year's).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from notifications.operations import metrics
from notifications.suppression.models import ADDRESS_MAX_LENGTH, Suppression, TrackingEvent

logger = logging.getLogger(__name__)

Reason = Suppression.Reason

# Each reason as the skip reason writes it (the choices' English labels, kept as data).
REASON_TEXT: dict[str, str] = {
    Reason.HARD_BOUNCE: "hard bounce",
    Reason.SOFT_BOUNCES: "repeated soft bounces",
    Reason.COMPLAINT: "spam complaint",
    Reason.REJECTED: "rejected by the provider",
    Reason.UNKNOWN_MAILBOX: "unknown mailbox",
    Reason.MANUAL: "added by an operator",
}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Rows deleted per statement when pruning.
PRUNE_BATCH = 1000


def normalize_address(address: str) -> str:
    """``address`` as suppressions store it: trimmed, without angle brackets, lower-cased;
    "" when it is not an address (no "@", or longer than SMTP allows)."""
    address = (address or "").strip().strip("<>").strip().lower()
    if "@" not in address or len(address) > ADDRESS_MAX_LENGTH or any(c.isspace() for c in address):
        return ""
    return address


def skip_reason(reason: str, occurred_at: datetime, now: datetime | None = None) -> str:
    """The email channel's skip reason for a suppression: "suppressed: hard bounce on 3 Dec"
    (in the service's time zone, "on 3 Dec 2025" in another year)."""
    local = timezone.localtime(occurred_at)
    today = timezone.localtime(now or timezone.now())
    day = f"{local.day} {MONTHS[local.month - 1]}"
    if local.year != today.year:
        day += f" {local.year}"
    return f"suppressed: {REASON_TEXT.get(reason, reason)} on {day}"


def suppressed_among(addresses: Iterable[str]) -> dict[str, str]:
    """The actively suppressed ones of ``addresses`` (normalized here): address → the skip
    reason. One indexed query; none when there is no address."""
    wanted = {normalize_address(address) for address in addresses} - {""}
    if not wanted:
        return {}
    now = timezone.now()
    rows = Suppression.objects.filter(address__in=wanted, lifted_at__isnull=True).values_list(
        "address", "reason", "occurred_at"
    )
    return {address: skip_reason(reason, at, now) for address, reason, at in rows}


def active_addresses(limit: int = 100_000) -> frozenset[str] | None:
    """Every actively suppressed address when there are at most ``limit`` (one query), for a
    campaign to check its recipients against in memory; None when there are more."""
    rows = list(
        Suppression.objects.filter(lifted_at__isnull=True).values_list("address", flat=True)[
            : limit + 1
        ]
    )
    return None if len(rows) > limit else frozenset(rows)


def suppression_create(
    *,
    address: str,
    reason: str,
    detail: str = "",
    provider: str = "",
    event_type: str = "",
    event_id: str = "",
    provider_event: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
    created_by: AbstractBaseUser | None = None,
) -> Suppression | None:
    """Suppress ``address`` for ``reason``; the new suppression, or None when nothing changed:
    not an address, suppressed already, or lifted by an operator after ``occurred_at`` (an
    event older than the lift does not undo it)."""
    address = normalize_address(address)
    if not address:
        return None
    occurred_at = occurred_at or timezone.now()
    standing = Q(lifted_at__isnull=True) | Q(lifted_at__gt=occurred_at)
    if Suppression.objects.filter(standing, address=address).exists():
        return None
    try:
        with transaction.atomic():
            suppression = Suppression.objects.create(
                address=address,
                reason=reason,
                detail=detail,
                provider=provider[:32],
                event_type=event_type[:32],
                event_id=event_id[:255],
                provider_event=provider_event or {},
                occurred_at=occurred_at,
                created_by=created_by,
            )
    except IntegrityError:  # suppressed meanwhile by another event
        return None
    transaction.on_commit(lambda: metrics.suppression_added(reason))
    logger.info("email address suppressed (suppression %s: %s)", suppression.pk, reason)
    return suppression


def suppression_record_refusal(*, replies: dict[str, str], server: str) -> int:
    """``server`` refused these recipients as unknown at send time (an SMTP 5.1.x reply
    for each address): suppress them. Returns how many were suppressed now."""
    return sum(
        suppression_create(
            address=address,
            reason=Reason.UNKNOWN_MAILBOX,
            detail=f"{server}: {reply}",
            provider="SMTP",
            event_type="refused",
            provider_event={"recipient": address, "reply": reply},
        )
        is not None
        for address, reply in replies.items()
    )


def suppression_lift(
    *, suppressions: QuerySet[Suppression], user: AbstractBaseUser | None = None
) -> int:
    """Lift the active ones of ``suppressions`` (the rows stay, with who lifted them and
    when); returns how many."""
    lifted = suppressions.filter(lifted_at__isnull=True).update(
        lifted_at=timezone.now(), lifted_by=user
    )
    if lifted:
        logger.info("%s email suppression(s) lifted", lifted)
    return lifted


def prune(now: datetime | None = None) -> dict[str, int]:
    """Forget soft bounces older than ``NOTIFY_SOFT_BOUNCE_DAYS`` (worked off: they count no
    more), and suppressions lifted more than ``NOTIFY_RETENTION_DAYS`` ago. Active
    suppressions stay until lifted."""
    now = now or timezone.now()
    window = now - timedelta(days=settings.NOTIFY_SOFT_BOUNCE_DAYS)
    history = now - timedelta(days=settings.NOTIFY_RETENTION_DAYS)
    return {
        "soft_bounces": _delete_in_batches(
            TrackingEvent.objects.filter(
                kind=TrackingEvent.Kind.SOFT_BOUNCE,
                occurred_at__lt=window,
                processed_at__isnull=False,
            )
        ),
        "lifted_suppressions": _delete_in_batches(
            Suppression.objects.filter(lifted_at__lt=history)
        ),
    }


def _delete_in_batches(rows: QuerySet) -> int:
    deleted = 0
    while True:
        ids = list(rows.order_by("pk").values_list("pk", flat=True)[:PRUNE_BATCH])
        if not ids:
            return deleted
        deleted += rows.model.objects.filter(pk__in=ids).delete()[0]
