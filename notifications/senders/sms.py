"""What the three SMS transports share: the recipient, segment counting and the daily limit.

The transports themselves live in ``sms_api.py`` (SMS Aero HTTP API), ``sms_smtp.py`` (SMS
Aero's SMTP gateway) and ``sms_smpp.py`` (SMPP); ``NOTIFY_SMS_TRANSPORTS`` orders them.

The daily limit (``NOTIFY_SMS_DAILY_LIMIT``) is enforced with one counter row per day: a
sender takes a slot with a conditional ``UPDATE … WHERE sent < limit`` before it talks to the
provider and gives it back if the send fails, so every worker on every host shares one count
and the limit cannot be overshot by concurrent sends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Count, F, Sum
from django.utils import timezone
from smpplib import consts as smpp_consts
from smpplib.gsm import make_parts

from notifications.senders.base import DeliveryError, SkipChannel

if TYPE_CHECKING:
    from notifications.models import UserContact


def phone_digits(phone: str) -> str:
    """``+79161234567`` → ``79161234567``: the form SMS providers take."""
    return phone.lstrip("+")


def sms_parts(text: str) -> tuple[list[bytes], int, int]:
    """``text`` encoded and cut for SMS: ``(parts, data_coding, esm_class)``.

    GSM 7-bit when every character fits, UCS2 otherwise; more than one part means a
    concatenated message whose parts carry a UDH (``esm_class`` has UDHI set).
    """
    return make_parts(text, encoding=smpp_consts.SMPP_ENCODING_DEFAULT)


def segment_count(text: str) -> int:
    """How many SMS ``text`` takes (160/153 GSM characters, 70/67 UCS2 characters a part)."""
    return len(sms_parts(text)[0])


class SmsTransport:
    """Base of the SMS senders: the phone number and the daily limit slot."""

    channel = "sms"
    transport = "sms"

    def phone(self, contact: UserContact) -> str:
        """The contact's E.164 number; raises ``SkipChannel`` when there is none."""
        if not contact.phone:
            raise SkipChannel("no phone number")
        return contact.phone

    def recipient(self, contact: UserContact) -> str:
        return self.phone(contact)


# --- daily limit ----------------------------------------------------------------------------


def _today_start() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def daily_limit_reason() -> str:
    """Why no SMS may be sent now ("" when one may): the day's limit is used up."""
    from notifications.models import SmsDailyCount

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


@contextmanager
def daily_slot() -> Iterator[None]:
    """Hold one of today's SMS slots while sending; given back if the send raises.

    Raises ``DeliveryError`` (permanent for this channel today) when the limit is reached.
    """
    from notifications.models import SmsDailyCount

    limit = settings.NOTIFY_SMS_DAILY_LIMIT
    if limit is None:
        yield
        return
    day = timezone.localdate()
    if not SmsDailyCount.objects.filter(day=day).exists():
        SmsDailyCount.objects.bulk_create([SmsDailyCount(day=day)], ignore_conflicts=True)
    taken = SmsDailyCount.objects.filter(day=day, sent__lt=limit).update(sent=F("sent") + 1)
    if not taken:
        raise DeliveryError(
            f"daily SMS limit reached: {limit} sent today (NOTIFY_SMS_DAILY_LIMIT)", permanent=True
        )
    try:
        yield
    except BaseException:
        SmsDailyCount.objects.filter(day=day, sent__gt=0).update(sent=F("sent") - 1)
        raise


@dataclass
class SmsToday:
    sent: int
    segments: int
    cost: Decimal | None
    limit: int | None


def sms_today() -> SmsToday:
    """SMS delivered since local midnight, their parts and what they cost (for the admin)."""
    from notifications.models import DeliveryAttempt

    totals = DeliveryAttempt.objects.filter(
        channel="sms",
        outcome=DeliveryAttempt.Outcome.SUCCESS,
        started_at__gte=_today_start(),
    ).aggregate(sent=Count("id"), segments=Sum("segments"), cost=Sum("cost"))
    return SmsToday(
        sent=totals["sent"] or 0,
        segments=totals["segments"] or 0,
        cost=totals["cost"],
        limit=settings.NOTIFY_SMS_DAILY_LIMIT,
    )
