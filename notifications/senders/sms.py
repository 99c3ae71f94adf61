"""What the three SMS transports share: the number, the text's parts, limits and the daily cap.

The transports live in ``sms_api.py`` (SMS Aero HTTP API), ``sms_smtp.py`` (an email-to-SMS
gateway) and ``sms_smpp.py`` (SMPP); ``NOTIFY_SMS_TRANSPORTS`` orders them.

``SmsSender`` is their template: ``prepare`` encodes the text and counts its segments, and
checks the transport's limits, before any provider is called; ``send_part`` takes one of
today's SMS slots before the first part and gives it back only when the provider surely did
not take the message (never after an ambiguous outcome, or once a part was accepted).

The daily limit (``NOTIFY_SMS_DAILY_LIMIT``) is one counter row per day, taken with a
conditional ``UPDATE … WHERE sent < limit``, so every worker on every host shares one count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.db.models import F
from django.utils import timezone

from notifications.content import content_for
from notifications.models import SmsDailyCount
from notifications.senders.base import DeliveryError, PartResult, Prepared, Sender, SkipChannel

if TYPE_CHECKING:
    from notifications.models import Notification, UserContact

# GSM 03.38: the basic table (one septet) and the extension table (escape + one septet).
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65}  # fmt: skip
_GSM_INDEX = {char: index for index, char in enumerate(GSM_BASIC) if char != "\x1b"}

DATA_CODING_GSM = 0x00  # SMSC default alphabet
DATA_CODING_UCS2 = 0x08
ESM_CLASS_UDHI = 0x40
MAX_PARTS = 255  # a concatenated SMS counts its parts in one byte


@dataclass(frozen=True)
class SmsEncoding:
    """``text`` as SMS parts: each part's payload (UDH included when concatenated)."""

    data_coding: int
    parts: list[bytes]

    @property
    def esm_class(self) -> int:
        return ESM_CLASS_UDHI if len(self.parts) > 1 else 0


def _gsm_units(text: str) -> list[bytes] | None:
    """One byte string per character (a septet, or escape + septet); None if not GSM-7."""
    units = []
    for char in text:
        if char in _GSM_INDEX:
            units.append(bytes((_GSM_INDEX[char],)))
        elif char in GSM_EXTENSION:
            units.append(bytes((0x1B, GSM_EXTENSION[char])))
        else:
            return None
    return units


def _ucs2_units(text: str) -> list[bytes]:
    """One byte string per character: two bytes, or four for a surrogate pair (emoji)."""
    return [char.encode("utf-16-be") for char in text]


def _pack(units: list[bytes], size: int) -> list[bytes]:
    """Units joined into chunks of at most ``size`` bytes, never splitting a unit."""
    chunks, current = [], b""
    for unit in units:
        if len(current) + len(unit) > size:
            chunks.append(current)
            current = b""
        current += unit
    if current or not chunks:
        chunks.append(current)
    return chunks


def sms_encoding(text: str, reference: int = 0) -> SmsEncoding:
    """``text`` encoded (GSM 7-bit when every character fits, else UCS2) and cut into SMS.

    One SMS holds 160 GSM characters or 70 UCS2 units; a concatenated one 153 or 67 per part,
    behind a UDH with ``reference`` (0–255). A GSM escape pair (``€ [ ] { } ~ ^ | \\``) and a
    surrogate pair (emoji) are never cut across two parts. Raises ``DeliveryError``
    (permanent for the transport) past 255 parts.
    """
    units = _gsm_units(text)
    if units is not None:
        coding, single, per_part = DATA_CODING_GSM, 160, 153
    else:
        units, coding, single, per_part = _ucs2_units(text), DATA_CODING_UCS2, 140, 134
    if sum(len(unit) for unit in units) <= single:
        return SmsEncoding(coding, [b"".join(units)])
    chunks = _pack(units, per_part)
    if len(chunks) > MAX_PARTS:
        raise DeliveryError(
            f"the text needs {len(chunks)} SMS parts; an SMS can have at most {MAX_PARTS}",
            permanent=True,
            transport_only=True,
        )
    ref = reference % 256
    return SmsEncoding(
        coding,
        [
            bytes((0x05, 0x00, 0x03, ref, len(chunks), number)) + chunk
            for number, chunk in enumerate(chunks, start=1)
        ],
    )


def segment_count(text: str) -> int:
    """How many SMS ``text`` takes (160/153 GSM characters, 70/67 UCS2 units a part)."""
    return len(sms_encoding(text).parts)


def phone_digits(phone: str) -> str:
    """``+79161234567`` → ``79161234567``: the form SMS providers take."""
    return phone.lstrip("+")


# --- daily limit ----------------------------------------------------------------------------


class DailyLimitReached(DeliveryError):
    """Today's ``NOTIFY_SMS_DAILY_LIMIT`` is used up: not the recipient's fault."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


def next_day_start() -> datetime:
    """The next local midnight (TIME_ZONE), when the daily count starts again."""
    tomorrow = timezone.localdate() + timedelta(days=1)
    return timezone.make_aware(datetime.combine(tomorrow, time.min))


def daily_limit_reason() -> str:
    """Why no SMS may be sent now ("" when one may): the day's limit is used up."""
    limit = settings.NOTIFY_SMS_DAILY_LIMIT
    if limit is None:
        return ""
    sent = (
        SmsDailyCount.objects.filter(day=timezone.localdate())
        .values_list("sent", flat=True)
        .first()
    )
    if (sent or 0) >= limit:
        return (
            f"daily SMS limit reached: {sent or 0} of {limit} sent today (NOTIFY_SMS_DAILY_LIMIT)"
        )
    return ""


def take_daily_slot() -> str | None:
    """Take one of today's SMS slots; returns its day (to give back), None with no limit.

    Raises ``DailyLimitReached`` when the limit is reached.
    """
    limit = settings.NOTIFY_SMS_DAILY_LIMIT
    if limit is None:
        return None
    day = timezone.localdate()
    if not SmsDailyCount.objects.filter(day=day).exists():
        SmsDailyCount.objects.bulk_create([SmsDailyCount(day=day)], ignore_conflicts=True)
    if not SmsDailyCount.objects.filter(day=day, sent__lt=limit).update(sent=F("sent") + 1):
        raise DailyLimitReached(
            f"daily SMS limit reached: {limit} sent today (NOTIFY_SMS_DAILY_LIMIT)"
        )
    return day.isoformat()


def give_back_daily_slot(day: str | None) -> None:
    """Return a slot taken by ``take_daily_slot`` for a message the provider did not take."""
    if day is not None:
        SmsDailyCount.objects.filter(day=day, sent__gt=0).update(sent=F("sent") - 1)


# --- the transports' template ---------------------------------------------------------------


class SmsSender(Sender):
    """Base of the SMS transports: the number, the text's parts and limits, the daily slot.

    Subclasses say ``max_length``/``min_length`` (characters the provider takes, 0 = no
    limit), whether they send the encoded parts themselves (``sends_parts``: SMPP) or the
    whole text in one request, and implement ``submit(prepared, index)``.
    """

    channel = "sms"
    paid = True
    provider: ClassVar[str] = "SMS"
    sends_parts: ClassVar[bool] = False
    min_length: ClassVar[int] = 1

    def max_length(self) -> int:
        return 0

    def provider_name(self) -> str:
        return self.provider

    def address(self, contact: UserContact) -> str:
        """The contact's E.164 number; raises ``SkipChannel`` when there is none."""
        if not contact.phone:
            raise SkipChannel("no phone number")
        return contact.phone

    def prepare(self, notification: Notification, contact: UserContact) -> Prepared:
        text = content_for(notification, self.channel).text
        phone = self.address(contact)
        limit = self.max_length()
        if len(text) < self.min_length or (limit and len(text) > limit):
            bounds = f"{self.min_length}–{limit}" if limit else f"at least {self.min_length}"
            raise DeliveryError(
                f"{self.provider_name()} takes {bounds} characters; this text has {len(text)}",
                permanent=True,
                transport_only=True,
            )
        encoding = sms_encoding(text, reference=notification.pk or 0)
        parts: list = encoding.parts if self.sends_parts else [text]
        return Prepared(
            address=phone,
            parts=parts,
            segments=len(encoding.parts),
            extra={"encoding": encoding, "text": text, "notification_id": notification.pk},
        )

    def send_part(self, prepared: Prepared, index: int) -> PartResult:
        try:
            day = take_daily_slot() if index == 0 else None
        except (OperationalError, InterfaceError) as err:
            raise DeliveryError(f"the daily SMS count is unavailable ({err})") from err
        try:
            return self.submit(prepared, index)
        except DeliveryError as err:
            if not err.ambiguous:
                give_back_daily_slot(day)
            raise

    def submit(self, prepared: Prepared, index: int) -> PartResult:
        """Hand part ``index`` to the provider; raises ``DeliveryError``."""
        raise NotImplementedError
