"""Taking and giving back the Stars of paid broadcast's flagged messages.

``reserve(campaign_id)`` takes one message's fee (``NOTIFY_TELEGRAM_STARS_PER_MESSAGE``) from
the campaign's budget and from the day's (``NOTIFY_TELEGRAM_STARS_DAILY_LIMIT``): one
conditional ``UPDATE … WHERE spent + fee <= budget`` on each row, in one transaction, both or
neither. So neither budget is ever exceeded, by any number of workers and hosts, and no
transaction is held beyond those two statements. ``give_back(reservation)`` returns the fee
of a message Telegram surely did not take. The day's row counts even with no day cap: the
dashboard shows it.

``is_paid(campaign_id)`` tells the Telegram sender whether a campaign's messages go flagged:
read at most once per campaign every ``CACHE_SECONDS`` in a process, and "no" for that long
once a reservation found a budget used up (the rest goes out unflagged, at the free pace,
without a query per message).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from notifications.broadcast.models import CampaignStars, StarsDailyCount, stars, tenths_of

# How long a process trusts what it read of a campaign's paid broadcast (seconds).
CACHE_SECONDS = 5.0
_paid: dict[int, tuple[float, bool]] = {}  # campaign id → (read at, paid with budget left)


@dataclass(frozen=True)
class Reservation:
    """One flagged message's fee, taken from its campaign's budget and from ``day``'s."""

    campaign_id: int
    day: date
    tenths: int

    @property
    def stars(self) -> Decimal:
        return stars(self.tenths)


@dataclass(frozen=True)
class StarsToday:
    """Stars taken since local midnight, and the day's cap (None: no cap)."""

    spent: Decimal
    limit: Decimal | None


def fee_tenths() -> int:
    """One flagged message's fee (NOTIFY_TELEGRAM_STARS_PER_MESSAGE) in tenths of a Star."""
    return tenths_of(settings.NOTIFY_TELEGRAM_STARS_PER_MESSAGE)


def forget() -> None:
    """Drop what this process read of campaigns' paid broadcast (tests)."""
    _paid.clear()


def is_paid(campaign_id: int) -> bool:
    """Whether the campaign's messages go out flagged: it has paid broadcast and its budget
    has one message's fee left (the day's cap is found out by ``reserve``)."""
    now = time.monotonic()
    known = _paid.get(campaign_id)
    if known is not None and now - known[0] < CACHE_SECONDS:
        return known[1]
    paid = CampaignStars.objects.filter(
        campaign_id=campaign_id, spent_tenths__lte=F("budget_tenths") - fee_tenths()
    ).exists()
    _paid[campaign_id] = (now, paid)
    return paid


def _take_day(day: date, fee: int) -> bool:
    """Take ``fee`` from ``day``'s count, within the day's cap; False when it is used up."""
    limit = settings.NOTIFY_TELEGRAM_STARS_DAILY_LIMIT
    rows = StarsDailyCount.objects.filter(day=day)
    if limit is not None:
        rows = rows.filter(spent_tenths__lte=tenths_of(limit) - fee)
    if rows.update(spent_tenths=F("spent_tenths") + fee):
        return True
    if StarsDailyCount.objects.filter(day=day).exists():
        return False  # the day's cap is used up
    StarsDailyCount.objects.bulk_create([StarsDailyCount(day=day)], ignore_conflicts=True)
    return bool(rows.update(spent_tenths=F("spent_tenths") + fee))


def reserve(campaign_id: int) -> Reservation | None:
    """One flagged message's fee, taken from the campaign's budget and the day's; None when
    either is used up (or the campaign has no paid broadcast): the message goes unflagged.

    Raises the database's ``OperationalError``/``InterfaceError``.
    """
    fee, day = fee_tenths(), timezone.localdate()
    with transaction.atomic():
        taken = CampaignStars.objects.filter(
            campaign_id=campaign_id, spent_tenths__lte=F("budget_tenths") - fee
        ).update(spent_tenths=F("spent_tenths") + fee)
        if taken and not _take_day(day, fee):
            transaction.set_rollback(True)  # both or neither
            taken = 0
    if not taken:
        _paid[campaign_id] = (time.monotonic(), False)
        return None
    return Reservation(campaign_id=campaign_id, day=day, tenths=fee)


def give_back(reservation: Reservation) -> None:
    """Return the fee of a message Telegram surely did not take (refused, or never sent)."""
    tenths = reservation.tenths
    with transaction.atomic():
        CampaignStars.objects.filter(
            campaign_id=reservation.campaign_id, spent_tenths__gte=tenths
        ).update(spent_tenths=F("spent_tenths") - tenths)
        StarsDailyCount.objects.filter(day=reservation.day, spent_tenths__gte=tenths).update(
            spent_tenths=F("spent_tenths") - tenths
        )
    known = _paid.get(reservation.campaign_id)
    if known is not None and not known[1]:
        _paid.pop(reservation.campaign_id, None)  # read as used up: it has room again


def campaign_stars_create(*, campaign_id: int, budget: Decimal) -> CampaignStars:
    """Paid broadcast for a campaign, with ``budget`` Stars (a multiple of 0.1 above 0)."""
    return CampaignStars.objects.create(campaign_id=campaign_id, budget_tenths=tenths_of(budget))


def stars_today() -> StarsToday:
    """The Stars paid campaigns took since local midnight, against the day's cap."""
    spent = (
        StarsDailyCount.objects.filter(day=timezone.localdate())
        .values_list("spent_tenths", flat=True)
        .first()
    )
    return StarsToday(spent=stars(spent or 0), limit=settings.NOTIFY_TELEGRAM_STARS_DAILY_LIMIT)
