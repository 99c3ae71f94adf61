"""Delivery receipts: an SMS's ``sent`` becomes ``delivered`` or ``undelivered``.

Telegram gives bots no receipts. An email's come from its provider's tracking webhook
(``notifications.suppression.tracking``) and end in ``conclude``, as SMS receipts do. SMS
receipts come three ways, and all end in ``record(receipt)``:

- SMS Aero calls ``/sms/callback/<SMS_CALLBACK_SECRET>/`` (``smsaero_receipt`` reads it);
- ``poll_smsaero()`` asks SMS Aero's ``sms/status`` about SMS still pending after
  ``NOTIFY_RECEIPT_POLL_AFTER`` seconds, less and less often, until ``NOTIFY_RECEIPT_GIVE_UP``;
- an SMPP session receives ``deliver_sm`` (or ``data_sm``) receipts (``handle_deliver_sm``,
  registered by the task layer for every session of the consumer).

Each SMS a tracked transport took (each part of a concatenated SMPP message: every part has
its own id and its own receipt, arriving in any order) is an ``SmsPart`` keyed by (transport,
provider message id). A receipt for an id not known yet (it raced the write of the round
that sent it) is stored, and ``link_parts`` matches it when that round is written. A part's
first final state is kept: a redelivered receipt changes nothing. An attempt is delivered
when every part is, undelivered as soon as one part is; the notification follows only while
it is ``sent`` and that attempt is its latest success (a resent notification's new run is
never overwritten by the old run's receipts).

An SMPP receipt names its message by the ``receipted_message_id`` TLV (the submit_sm_resp's
id, as SMPP 3.4 defines it), else by its text's ``id:``, whose form varies between SMSCs:
decimal in some, hex in others, zero-padded or not. So an SMPP part is stored, and its
receipts matched, under one key (``message_key``): an id of digits only is its number
(``0000006699`` is ``6699``); an id of hex digits with at least one letter A-F, in either
case, is its number read in hex, written in decimal (``00001A2B`` is ``6699``); any other id
(``smsc-1``, a UUID) is itself. Receipt ``id:0000006699`` thus matches submit_sm_resp id
``00001A2B``. An all-digit id is never read as hex: ``1234`` and ``4660`` are two messages
of a decimal SMSC far more often than one message of a hex one, and a receipt missed (the SMS
stays ``sent``) is better than one recorded against the wrong SMS. With one key on both
sides, the unique (transport, message id) constraint is where a receipt and the write of its
send meet, whichever comes first. Control characters (a NUL-terminated text or C-string) are
removed from everything read from a receipt.

A receipt that cannot be stored (a value the database refuses, a bug) is logged and
acknowledged, so the SMSC does not redeliver it forever; one that met a database that is
down or locked (``OperationalError``, ``InterfaceError``) is left for redelivery.

SMS Aero's statuses are keyed on the number, not on ``extendStatus`` (whose words differ
between sources): 1 delivered; 2 (not delivered) and 6 (rejected) undelivered; 0 (queue),
3 (handed to the operator), 4 (waiting) and 8 (moderation) pending. SMPP: ``DELIVRD``
delivered; ``UNDELIV``, ``REJECTD``, ``EXPIRED``, ``DELETED`` undelivered; others pending.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from notifications.models import DeliveryAttempt, Notification, ReceiptStatus, SmsPart
from notifications.operations import metrics
from notifications.senders.base import DeliveryError
from notifications.senders.sms_api import SmsAeroApiSender

logger = logging.getLogger(__name__)

Status = Notification.Status
# Transports whose parts get receipts (the email-to-SMS gateway gives none).
TRACKED_TRANSPORTS = ("sms_api", "sms_smpp")

SMSAERO_STATES = {
    1: ReceiptStatus.DELIVERED,
    2: ReceiptStatus.UNDELIVERED,
    6: ReceiptStatus.UNDELIVERED,
    0: ReceiptStatus.PENDING,
    3: ReceiptStatus.PENDING,
    4: ReceiptStatus.PENDING,
    8: ReceiptStatus.PENDING,
}
SMSAERO_WORDS = {
    0: "queue",
    1: "delivered",
    2: "not delivered",
    3: "handed to the operator",
    4: "waiting",
    6: "rejected",
    8: "moderation",
}

# esm_class bits 2-5 are the message type; 0x04 is "SMSC delivery receipt" (SMPP 3.4 5.2.12).
# (smpplib's SMPP_MSGTYPE_DELIVERYACK, 0x08, is the SME's acknowledgement, another thing.)
ESM_CLASS_TYPE_MASK = 0x3C
ESM_CLASS_RECEIPT = 0x04
SMPP_STATS = {
    "DELIVRD": ReceiptStatus.DELIVERED,
    "UNDELIV": ReceiptStatus.UNDELIVERED,
    "REJECTD": ReceiptStatus.UNDELIVERED,
    "EXPIRED": ReceiptStatus.UNDELIVERED,
    "DELETED": ReceiptStatus.UNDELIVERED,
}
# The message_state TLV (SMPP 3.4 5.2.28) as the receipt text's stat word.
MESSAGE_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
_RECEIPT_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err):(\S*)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEX_ID = re.compile(r"[0-9A-Fa-f]{1,64}")  # an SMPP message id has at most 64 characters


@dataclass(frozen=True)
class Receipt:
    """What one receipt says about one SMS (or part)."""

    transport: str
    message_id: str
    state: str  # a ReceiptStatus
    provider_status: str  # as the provider said it: "DELIVRD", "2 not delivered", …
    error_code: str = ""
    done_at: datetime | None = None


# --- reading receipts ---------------------------------------------------------------------------


def smsaero_receipt(fields: Mapping[str, Any]) -> Receipt:
    """The receipt in an SMS Aero callback or ``sms/status`` answer (top level or under
    ``data``); raises ``ValueError`` when it has no id (or one with control characters, or
    too long to store) or no numeric status."""
    data = fields.get("data")
    if isinstance(data, Mapping) and "id" in data:
        fields = data
    message_id = str(fields.get("id") or "").strip()
    try:
        status = int(str(fields.get("status")).strip())
    except ValueError:
        raise ValueError("an SMS Aero receipt needs a numeric status") from None
    if not message_id:
        raise ValueError("an SMS Aero receipt needs the message id")
    if _CONTROL.search(message_id) or len(message_id) > 255:
        raise ValueError("an SMS Aero message id is printable and at most 255 characters")
    done_at = None
    if status in (1, 2, 6):
        try:
            done_at = datetime.fromtimestamp(int(fields.get("dateAnswer")), tz=UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            done_at = None
    return Receipt(
        transport="sms_api",
        message_id=message_id,
        state=SMSAERO_STATES.get(status, ReceiptStatus.PENDING),
        provider_status=f"{status} {SMSAERO_WORDS.get(status, 'unknown status')}",
        error_code=str(status),
        done_at=done_at,
    )


def _text(value: Any) -> str:
    """``value`` (bytes as ASCII) with control characters (a C-string's NUL) as spaces."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return _CONTROL.sub(" ", str(value or ""))


def parse_receipt_text(text: str) -> dict[str, str]:
    """The fields of an SMPP receipt's text (``id:… sub:… dlvrd:… submit date:… done date:…
    stat:… err:… text:…``), lower-cased names; any of them may be missing. Control
    characters (``err:000\\x00``) end a value."""
    head = re.split(r"\btext:", _text(text), maxsplit=1, flags=re.IGNORECASE)[0]
    return {name.lower(): value for name, value in _RECEIPT_FIELD.findall(head)}


def smpp_receipt(pdu: Any) -> Receipt | None:
    """The receipt a ``deliver_sm`` or ``data_sm`` carries; None when it is not a delivery
    receipt (a message from a handset) or names no message id.

    The id is the ``receipted_message_id`` TLV, else the receipt text's ``id:``; the state
    the ``message_state`` TLV when present, else the text's ``stat:``. The text is the
    ``short_message``, else the ``message_payload`` TLV.
    """
    if (int(getattr(pdu, "esm_class", 0) or 0) & ESM_CLASS_TYPE_MASK) != ESM_CLASS_RECEIPT:
        return None
    text = getattr(pdu, "short_message", None) or getattr(pdu, "message_payload", None) or b""
    fields = parse_receipt_text(_text(text))
    message_id = _text(getattr(pdu, "receipted_message_id", "")).strip() or fields.get("id")
    if not message_id:
        logger.warning("SMPP delivery receipt without a message id: %r", text)
        return None
    state_tlv = getattr(pdu, "message_state", None)
    stat = MESSAGE_STATES.get(state_tlv) if isinstance(state_tlv, int) else None
    stat = (stat or fields.get("stat") or "UNKNOWN").upper()
    return Receipt(
        transport="sms_smpp",
        message_id=message_id,
        state=SMPP_STATS.get(stat, ReceiptStatus.PENDING),
        provider_status=stat,
        error_code=fields.get("err", ""),
    )


def handle_deliver_sm(pdu: Any) -> None:
    """An SMPP session's ``deliver_sm`` (and ``data_sm``) handler: records a delivery receipt.

    Raises only when the database is down or locked (``OperationalError``,
    ``InterfaceError``), so the receipt is left unacknowledged and comes again. A receipt
    that cannot be read or stored for any other reason is logged and returns: acknowledged,
    or the SMSC would redeliver it forever.
    """
    close_old_connections()
    try:
        receipt = smpp_receipt(pdu)
        if receipt is not None:
            record(receipt)
    except (OperationalError, InterfaceError):
        raise
    except Exception:
        logger.exception(
            "SMPP %s not stored; acknowledged all the same: %r",
            getattr(pdu, "command", "deliver_sm"),
            getattr(pdu, "short_message", None) or getattr(pdu, "receipted_message_id", None),
        )
    finally:
        close_old_connections()


# --- matching message ids -----------------------------------------------------------------------


def message_key(transport: str, message_id: str) -> str:
    """What a part with ``message_id`` is stored and its receipts matched under: for SMPP,
    the id's number when it is one (the rule in the module's docstring), else the id."""
    if transport == "sms_smpp" and _HEX_ID.fullmatch(message_id):
        return str(int(message_id, 10 if message_id.isdigit() else 16))
    return message_id[:255]


# --- recording them -----------------------------------------------------------------------------


def record(receipt: Receipt, now: datetime | None = None) -> bool:
    """Store what ``receipt`` says about its part and settle the part's attempt (and its
    notification). False when it changed nothing (the part was final already)."""
    now = now or timezone.now()
    with transaction.atomic():
        key = {
            "transport": receipt.transport,
            "message_id": message_key(receipt.transport, receipt.message_id),
        }
        part = None
        if key["message_id"] != receipt.message_id:  # a part stored before SMPP ids had keys
            part = (
                SmsPart.objects.select_for_update()
                .filter(transport=receipt.transport, message_id=receipt.message_id)
                .first()
            )
        if part is None:
            SmsPart.objects.bulk_create([SmsPart(**key)], ignore_conflicts=True)
            part = SmsPart.objects.select_for_update().get(**key)
        if part.state != ReceiptStatus.PENDING:
            transaction.on_commit(lambda: metrics.receipt_recorded(receipt.transport, "repeated"))
            return False
        transaction.on_commit(lambda: metrics.receipt_recorded(receipt.transport, receipt.state))
        changes: dict[str, Any] = {
            "received_at": part.received_at or now,
            "provider_status": receipt.provider_status[:64],
            "error_code": receipt.error_code[:32],
        }
        if receipt.state != ReceiptStatus.PENDING:
            changes.update(state=receipt.state, done_at=receipt.done_at or now)
        SmsPart.objects.filter(pk=part.pk).update(**changes)
        if part.attempt_id is None:
            logger.info(
                "%s receipt for unknown id %s stored (%s)",
                receipt.transport,
                receipt.message_id,
                receipt.provider_status,
            )
        else:
            settle(part.attempt_id, now)
    return True


def link_parts(attempt: DeliveryAttempt, message_ids: list[str]) -> None:
    """Register the parts of a successful attempt of a tracked transport, in the
    transaction that writes it: receipts stored before (it raced this write) are matched,
    and the attempt settled if they say enough."""
    if attempt.transport not in TRACKED_TRANSPORTS or attempt.pk is None:
        return
    keys = [message_key(attempt.transport, message_id) for message_id in message_ids if message_id]
    if not keys:
        return
    SmsPart.objects.bulk_create(
        [
            SmsPart(transport=attempt.transport, message_id=key, attempt=attempt, part=n)
            for n, key in enumerate(keys, start=1)
        ],
        ignore_conflicts=True,
    )
    early = SmsPart.objects.filter(
        transport=attempt.transport, message_id__in=keys, attempt__isnull=True
    )
    for pk, key in list(early.values_list("pk", "message_id")):
        SmsPart.objects.filter(pk=pk, attempt__isnull=True).update(
            attempt=attempt, part=keys.index(key) + 1
        )
    if SmsPart.objects.filter(attempt=attempt, received_at__isnull=False).exists():
        settle(attempt.pk)


def _describe(part: SmsPart, total: int) -> str:
    where = f"part {part.part} of {total}: " if total > 1 and part.part else ""
    if part.transport == "sms_smpp":
        return f"{where}{part.provider_status} err:{part.error_code or '?'}"
    return f"{where}status {part.provider_status}"


def settle(attempt_id: int, now: datetime | None = None) -> str:
    """Work out an attempt's receipt status from its parts, and move its notification from
    ``sent`` to ``delivered``/``undelivered`` when it is final. Returns the status."""
    now = now or timezone.now()
    attempt = DeliveryAttempt.objects.select_for_update().get(pk=attempt_id)
    if attempt.receipt_status in (ReceiptStatus.DELIVERED, ReceiptStatus.UNDELIVERED):
        return attempt.receipt_status
    parts = list(SmsPart.objects.filter(attempt_id=attempt_id).order_by("part", "pk"))
    failed = [p for p in parts if p.state == ReceiptStatus.UNDELIVERED]
    heard = [p for p in parts if p.received_at is not None]
    if failed:
        status, detail = ReceiptStatus.UNDELIVERED, _describe(failed[0], len(parts))
        at = failed[0].done_at or now
    elif parts and all(p.state == ReceiptStatus.DELIVERED for p in parts):
        status, detail = ReceiptStatus.DELIVERED, ""
        at = max((p.done_at or now) for p in parts)
    elif heard:
        latest = max(heard, key=lambda p: p.received_at)
        status, detail, at = ReceiptStatus.PENDING, _describe(latest, len(parts)), now
    else:
        return attempt.receipt_status
    conclude(attempt, status, at, detail)
    return status


def conclude(
    attempt: DeliveryAttempt,
    status: str,
    at: datetime,
    detail: str,
    *,
    source: str = "the SMS receipt",
) -> None:
    """Write ``attempt``'s receipt status, and when it is final, move its notification from
    ``sent`` to ``delivered``/``undelivered`` (only while that attempt is its latest
    success). Called with the attempt locked, in a transaction; by ``settle`` for SMS, and
    for email by the email provider's tracking events (``source``: who says so)."""
    DeliveryAttempt.objects.filter(pk=attempt.pk).update(
        receipt_status=status, receipt_at=at, receipt_error=detail[:100]
    )
    if status == ReceiptStatus.PENDING:
        return
    newer_success = DeliveryAttempt.objects.filter(
        notification_id=OuterRef("pk"),
        outcome=DeliveryAttempt.Outcome.SUCCESS,
        pk__gt=attempt.pk,
    )
    changes: dict[str, Any] = {"status": status}
    if status == ReceiptStatus.UNDELIVERED:
        changes["last_error"] = f"not delivered, says {source} ({detail})"
    Notification.objects.filter(pk=attempt.notification_id, status=Status.SENT).exclude(
        Exists(newer_success)
    ).update(**changes)


# --- asking SMS Aero ----------------------------------------------------------------------------


def _poll_due(part: SmsPart, now: datetime) -> bool:
    """Whether to ask about ``part`` now: first ``NOTIFY_RECEIPT_POLL_AFTER`` after it was
    sent, then each time a quarter of its age has passed since the last time (at least a
    minute and that setting, at most an hour)."""
    if part.checked_at is None:
        return True
    interval = (now - part.created_at).total_seconds() / 4
    interval = min(max(interval, settings.NOTIFY_RECEIPT_POLL_AFTER, 60.0), 3600.0)
    return (now - part.checked_at).total_seconds() >= interval


def pending_smsaero_parts(now: datetime | None = None, limit: int = 500) -> list[SmsPart]:
    """SMS Aero SMS of ``sent`` notifications with no final receipt, old enough to ask
    about and not past ``NOTIFY_RECEIPT_GIVE_UP``, least recently asked first."""
    now = now or timezone.now()
    candidates = SmsPart.objects.filter(
        transport="sms_api",
        state=ReceiptStatus.PENDING,
        attempt__notification__status=Status.SENT,
        created_at__lte=now - timedelta(seconds=settings.NOTIFY_RECEIPT_POLL_AFTER),
        created_at__gt=now - timedelta(seconds=settings.NOTIFY_RECEIPT_GIVE_UP),
    ).order_by(F("checked_at").asc(nulls_first=True), "pk")[: limit * 4]
    return [part for part in candidates if _poll_due(part, now)][:limit]


def poll_smsaero(now: datetime | None = None) -> dict[str, int]:
    """Ask SMS Aero (``sms/status``) about each pending SMS that is due; record what it
    says. No transaction is open during a call. Returns counts: asked, final, errors."""
    sender = SmsAeroApiSender()
    counts = {"asked": 0, "final": 0, "errors": 0}
    if not sender.is_configured():
        return counts
    parts = pending_smsaero_parts(now)
    if not parts:
        return counts
    try:
        client = sender.client()
    except DeliveryError as err:
        logger.warning("SMS receipts not polled: %s", err.message)
        return counts
    for part in parts:
        asked_at = timezone.now()
        counts["asked"] += 1
        try:
            data = client.sms_status(int(part.message_id))
            receipt = smsaero_receipt(data if isinstance(data, Mapping) else {})
        except (DeliveryError, ValueError) as err:
            counts["errors"] += 1
            logger.warning("SMS Aero status of %s not known: %s", part.message_id, err)
            SmsPart.objects.filter(pk=part.pk).update(checked_at=asked_at)
            continue
        SmsPart.objects.filter(pk=part.pk).update(checked_at=asked_at)
        if receipt.message_id != part.message_id:
            receipt = Receipt(**{**receipt.__dict__, "message_id": part.message_id})
        record(receipt, asked_at)
        if receipt.state != ReceiptStatus.PENDING:
            counts["final"] += 1
    return counts


def prune(now: datetime | None = None) -> int:
    """Delete stored receipts that never matched an attempt, once past the give-up age."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.NOTIFY_RECEIPT_GIVE_UP)
    deleted, _ = SmsPart.objects.filter(attempt__isnull=True, created_at__lt=cutoff).delete()
    return deleted
