"""What paid broadcast spends: each paid campaign's Stars, and every campaign's per day.

Amounts are whole tenths of a Star (one flagged message costs 0.1 Star: one tenth), so the
conditional UPDATEs that take and give them back add and compare integers, exactly, on SQLite
as on PostgreSQL (a decimal column is a float on SQLite). ``stars()`` reads them as Stars.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

TENTH = Decimal("0.1")


def stars(tenths: int) -> Decimal:
    """``tenths`` of a Star as Stars: 34 → Decimal("3.4")."""
    return (Decimal(tenths) * TENTH).quantize(TENTH)


def tenths_of(amount: Decimal) -> int:
    """Stars as whole tenths: Decimal("3.4") → 34; raises ``ValueError`` for an amount that is
    not a multiple of 0.1 Star."""
    tenths = amount / TENTH
    if tenths != tenths.to_integral_value():
        raise ValueError(f"{amount} Stars is not a whole number of tenths of a Star")
    return int(tenths)


class CampaignStars(models.Model):
    """A campaign's paid broadcast: its Stars budget, and what its flagged messages took."""

    campaign = models.OneToOneField(
        "notifications.Campaign",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="stars",
        verbose_name=_("campaign"),
    )
    budget_tenths = models.PositiveBigIntegerField(
        _("budget (tenths of a Star)"),
        help_text=_("The most its flagged messages may cost, in tenths of a Star."),
    )
    spent_tenths = models.PositiveBigIntegerField(
        _("spent (tenths of a Star)"),
        default=0,
        help_text=_(
            "0.1 Star for each message sent flagged, or whose outcome is unknown; given back "
            "when Telegram surely did not take it."
        ),
    )

    class Meta:
        verbose_name = _("campaign's Telegram Stars")
        verbose_name_plural = _("campaigns' Telegram Stars")
        constraints = [
            models.CheckConstraint(
                condition=Q(spent_tenths__lte=F("budget_tenths")), name="stars_within_budget"
            )
        ]

    def __str__(self) -> str:
        return f"{stars(self.spent_tenths)} of {stars(self.budget_tenths)} Stars"

    @property
    def budget(self) -> Decimal:
        return stars(self.budget_tenths)

    @property
    def spent(self) -> Decimal:
        return stars(self.spent_tenths)


class StarsDailyCount(models.Model):
    """The Stars every paid campaign took on one local day: enforces
    NOTIFY_TELEGRAM_STARS_DAILY_LIMIT, as ``SmsDailyCount`` does the SMS cap."""

    day = models.DateField(_("day"), unique=True)
    spent_tenths = models.PositiveBigIntegerField(_("spent (tenths of a Star)"), default=0)

    class Meta:
        verbose_name = _("Telegram Stars of a day")
        verbose_name_plural = _("Telegram Stars by day")
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day}: {stars(self.spent_tenths)} Stars"

    @property
    def spent(self) -> Decimal:
        return stars(self.spent_tenths)
