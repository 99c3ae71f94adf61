"""The email provider's tracking events (django-anymail's webhooks): read, stored, worked off.

The webhook's signal receiver calls ``inbox_write``: it reads the event, keeps only those
that change something here, stores each as one ``TrackingEvent`` row, and returns; a task
works the row off (``process``), and a task every minute works off what its doorbell missed.

What each event does (anymail's normalized ``event_type``, and for some providers their own
field, read from ``esp_event``):

- ``delivered``: the email's attempt (matched by its ``provider_message_id``: anymail's
  message id, or the Message-ID header) is marked delivered and its notification moves from
  ``sent`` to ``delivered``, as SMS receipts do (``notifications.receipts.conclude``). A
  delivery that arrives before its send is recorded waits up to ``DELIVERY_WAIT_SECONDS``.
- ``bounced`` (hard), ``rejected``, ``complained``: the address is suppressed; a hard bounce
  or a rejection also marks the attempt undelivered.
- soft bounces (``deferred``, and ``bounced`` the provider calls soft: Postmark's
  ``SoftBounce``, Amazon SES's ``Transient``, Mailgun's temporary failures, which anymail
  already reads as ``deferred``; or a bounce whose reason is not the address, such as
  SendGrid's ``blocked``, or not given): counted; ``NOTIFY_SOFT_BOUNCE_LIMIT`` of them within
  ``NOTIFY_SOFT_BOUNCE_DAYS`` (since the address was last lifted) suppress it.
- everything else (opens, clicks, queued, sent, unsubscribes, autoresponders, and Postmark's
  bounces that say nothing of the address: a DMARC policy, an unconfirmed sender signature,
  a relay test) is ignored.

Working off an event is idempotent: an event delivered twice is stored once (by its
provider's event id), a suppressed address stays suppressed once, a receipt is final once.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Max
from django.utils import timezone

from notifications import receipts
from notifications.models import Channel, DeliveryAttempt, ReceiptStatus
from notifications.operations import metrics
from notifications.redaction import redact
from notifications.suppression.models import Suppression, TrackingEvent
from notifications.suppression.services import (
    normalize_address,
    suppression_create,
)

logger = logging.getLogger(__name__)

Kind = TrackingEvent.Kind
Reason = Suppression.Reason

# A delivery whose attempt is not found yet (the webhook raced the write of its round) is
# looked for again, every minute, for this long; then dropped (mail sent by something else
# through the same provider account is never found).
DELIVERY_WAIT_SECONDS = 300.0
# What is kept of a provider's event: a larger one (a bounce's full dump) is cut.
EVENT_MAX_CHARS = 8000
DETAIL_MAX_CHARS = 1000
# Postmark's bounce types ("Type") that say nothing about the recipient's address.
POSTMARK_NOT_THE_ADDRESS = frozenset({"DMARCPolicy", "Unconfirmed", "OpenRelayTest"})
# Postmark's bounce types that are soft (anymail reads SoftBounce as ``bounced``).
POSTMARK_SOFT = frozenset({"SoftBounce", "Transient", "DnsError"})
# Amazon SES's bounce types that are soft.
SES_SOFT = frozenset({"Transient", "Undetermined"})
# A ``bounced`` event with one of these reasons is about the address: hard. Any other (a
# block, a virus, a reason the provider does not give) counts as a soft one.
HARD_REASONS = (RejectReason.BOUNCED, RejectReason.INVALID)
# How an undelivered attempt's receipt names the event (English: it is data).
KIND_TEXT = {
    Kind.DELIVERED: "delivered",
    Kind.HARD_BOUNCE: "hard bounce",
    Kind.SOFT_BOUNCE: "soft bounce",
    Kind.COMPLAINT: "spam complaint",
    Kind.REJECTED: "rejected by the provider",
}
SUPPRESSING = {
    Kind.HARD_BOUNCE: Reason.HARD_BOUNCE,
    Kind.REJECTED: Reason.REJECTED,
    Kind.COMPLAINT: Reason.COMPLAINT,
}


# --- reading an event ---------------------------------------------------------------------------


def _esp_event(event: AnymailTrackingEvent) -> Mapping[str, Any]:
    raw = event.esp_event
    return raw if isinstance(raw, Mapping) else {}


def _soft_by_provider(esp_name: str, raw: Mapping[str, Any]) -> bool:
    if esp_name == "Postmark":
        return raw.get("Type") in POSTMARK_SOFT
    if esp_name == "Amazon SES":
        bounce = raw.get("bounce")
        return isinstance(bounce, Mapping) and bounce.get("bounceType") in SES_SOFT
    return False


def kind_of(event: AnymailTrackingEvent, esp_name: str) -> str | None:
    """What ``event`` is here (a ``TrackingEvent.Kind``), or None: ignored."""
    raw = _esp_event(event)
    if esp_name == "Postmark" and raw.get("Type") in POSTMARK_NOT_THE_ADDRESS:
        return None
    event_type = event.event_type
    if event_type == EventType.DELIVERED:
        return Kind.DELIVERED
    if event_type == EventType.COMPLAINED:
        return Kind.COMPLAINT
    if event_type == EventType.REJECTED:
        return Kind.REJECTED
    if event_type == EventType.DEFERRED:
        return Kind.SOFT_BOUNCE
    if event_type == EventType.BOUNCED:
        soft = _soft_by_provider(esp_name, raw) or event.reject_reason not in HARD_REASONS
        return Kind.SOFT_BOUNCE if soft else Kind.HARD_BOUNCE
    return None


def _storable(raw: Any) -> dict[str, Any]:
    """The provider's event as JSON to keep: redacted of our secrets, cut when large."""
    try:
        text = json.dumps(raw, default=str)
    except (TypeError, ValueError):
        text = json.dumps(str(raw))
    text = redact(text)
    if len(text) > EVENT_MAX_CHARS:
        return {"truncated": text[:EVENT_MAX_CHARS]}
    value = json.loads(text)
    return value if isinstance(value, dict) else {"event": value}


def _text(value: Any) -> str:
    return str(value).strip() if value not in (None, "") else ""


def _when(event: AnymailTrackingEvent, now: datetime) -> datetime:
    """When the provider says it happened (never later than now); now when it does not say."""
    at = event.timestamp
    if not isinstance(at, datetime):
        return now
    if timezone.is_naive(at):
        at = timezone.make_aware(at, UTC)
    return min(at, now)


def inbox_write(event: AnymailTrackingEvent, esp_name: str) -> TrackingEvent | None:
    """Store ``event`` for the task to work off: the row, or None when it changes nothing
    here (ignored, without the address or message id it needs, or stored already)."""
    kind = kind_of(event, esp_name)
    if kind is None:
        metrics.email_event("ignored")
        return None
    address = normalize_address(_text(event.recipient))
    message_id = _text(event.message_id)[:255]
    if (kind == Kind.DELIVERED and not message_id) or (kind != Kind.DELIVERED and not address):
        logger.warning(
            "%s %s event without %s ignored",
            esp_name,
            event.event_type,
            "a message id" if kind == Kind.DELIVERED else "a recipient address",
        )
        metrics.email_event("ignored")
        return None
    now = timezone.now()
    detail = "; ".join(
        text for text in (_text(event.description), _text(event.mta_response)) if text
    )
    try:
        with transaction.atomic():
            stored = TrackingEvent.objects.create(
                provider=_text(esp_name)[:32],
                event_id=_text(event.event_id)[:255],
                event_type=_text(event.event_type)[:32],
                kind=kind,
                address=address,
                message_id=message_id,
                detail=redact(detail)[:DETAIL_MAX_CHARS],
                provider_event=_storable(event.esp_event),
                occurred_at=_when(event, now),
                received_at=now,
            )
    except IntegrityError:  # the provider sent it again: stored already
        return None
    metrics.email_event(kind)
    return stored


# --- working events off -------------------------------------------------------------------------


def process(
    ids: list[int] | None = None, *, now: datetime | None = None, limit: int = 500
) -> dict[str, int]:
    """Work off the stored events among ``ids`` (default: every one waiting, oldest first,
    at most ``limit``), each in a transaction of its own. Returns what became of them:
    counts by outcome. Raises only when the database is down or locked."""
    pending = TrackingEvent.objects.filter(processed_at__isnull=True)
    if ids is not None:
        pending = pending.filter(pk__in=ids)
    outcomes: Counter[str] = Counter()
    for event in pending.order_by("pk")[:limit]:
        outcomes[_process_one(event, now or timezone.now())] += 1
    return dict(outcomes)


def _process_one(event: TrackingEvent, now: datetime) -> str:
    try:
        with transaction.atomic():
            taken = TrackingEvent.objects.filter(pk=event.pk, processed_at__isnull=True).update(
                processed_at=now
            )
            if not taken:
                return "taken"  # another worker has it
            outcome = _apply(event, now)
            done = TrackingEvent.objects.filter(pk=event.pk)
            if outcome == "waiting":
                done.update(processed_at=None)
            elif event.kind != Kind.SOFT_BOUNCE:
                done.delete()  # what it says is recorded where it belongs
        return outcome
    except (OperationalError, InterfaceError):
        raise
    except Exception:
        # Not workable (a bug, a value the database refuses): logged and set aside, not
        # tried again every minute.
        logger.exception("email provider event %s not worked off; set aside", event.pk)
        TrackingEvent.objects.filter(pk=event.pk).update(processed_at=now)
        return "failed"


def _apply(event: TrackingEvent, now: datetime) -> str:
    if event.kind == Kind.DELIVERED:
        settled = _settle_attempt(event, ReceiptStatus.DELIVERED)
        if settled is None:
            young = (now - event.received_at).total_seconds() < DELIVERY_WAIT_SECONDS
            return "waiting" if young else "unmatched"
        return "delivered" if settled else "repeated"
    if event.kind == Kind.SOFT_BOUNCE:
        return "suppressed" if _count_soft_bounce(event, now) else "counted"
    if event.kind in (Kind.HARD_BOUNCE, Kind.REJECTED):
        _settle_attempt(event, ReceiptStatus.UNDELIVERED)
    created = _suppress(event, SUPPRESSING[event.kind])
    return "suppressed" if created else "suppressed already"


def _suppress(event: TrackingEvent, reason: str, detail: str = "") -> Suppression | None:
    return suppression_create(
        address=event.address,
        reason=reason,
        detail=detail or event.detail,
        provider=event.provider,
        event_type=event.event_type,
        event_id=event.event_id,
        provider_event=event.provider_event,
        occurred_at=event.occurred_at,
    )


def _count_soft_bounce(event: TrackingEvent, now: datetime) -> Suppression | None:
    """Suppress ``event``'s address when it has bounced softly ``NOTIFY_SOFT_BOUNCE_LIMIT``
    times within ``NOTIFY_SOFT_BOUNCE_DAYS`` since it was last lifted."""
    days = settings.NOTIFY_SOFT_BOUNCE_DAYS
    since = now - timedelta(days=days)
    lifted = Suppression.objects.filter(address=event.address).aggregate(at=Max("lifted_at"))
    if lifted["at"] is not None:
        since = max(since, lifted["at"])
    count = TrackingEvent.objects.filter(
        address=event.address, kind=Kind.SOFT_BOUNCE, occurred_at__gte=since
    ).count()
    if count < settings.NOTIFY_SOFT_BOUNCE_LIMIT:
        return None
    detail = f"{count} soft bounces in {days} days; the last: {event.detail}".rstrip(": ")
    return _suppress(event, Reason.SOFT_BOUNCES, detail)


def message_ids(message_id: str) -> list[str]:
    """The forms a provider's message id may be stored in: as given, and with or without
    the angle brackets of a Message-ID header."""
    bare = message_id.strip().strip("<>")
    return sorted({message_id, bare, f"<{bare}>"} - {"", "<>"})


def _settle_attempt(event: TrackingEvent, status: str) -> bool | None:
    """Mark the email attempt ``event`` is about ``status`` (and its notification, when it
    is still ``sent``): True; False when its receipt was final already; None when no
    attempt has that message id."""
    if not event.message_id:
        return None
    attempt = (
        DeliveryAttempt.objects.select_for_update()
        .filter(
            channel=Channel.EMAIL,
            provider_message_id__in=message_ids(event.message_id),
            outcome=DeliveryAttempt.Outcome.SUCCESS,
        )
        .order_by("-pk")
        .first()
    )
    if attempt is None:
        return None
    if attempt.receipt_status in (ReceiptStatus.DELIVERED, ReceiptStatus.UNDELIVERED):
        return False
    detail = ""
    if status == ReceiptStatus.UNDELIVERED:
        detail = f"{KIND_TEXT[event.kind]}: {event.detail}".rstrip(": ")
    receipts.conclude(attempt, status, event.occurred_at, detail, source=event.provider)
    return True
