"""The dashboard's rolled-up past days and their counts (``notifications.rollup``)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class DashboardDay(models.Model):
    """One past day of the dashboard, rolled up: the dashboard reads its counts instead of
    scanning that day's notifications and attempts again (``notifications.rollup``)."""

    day = models.DateTimeField(_("day"), unique=True, help_text=_("The day's local midnight."))
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("dashboard day")
        verbose_name_plural = _("dashboard days")

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d}"


class DashboardCount(models.Model):
    """One count of a rolled-up day: notifications created that day by channel and status;
    attempts started that day by channel, outcome and failure reason (with SMS parts and
    cost); or sent notifications by channel and time-to-send bucket (for p50 and p95)."""

    class Kind(models.TextChoices):
        NOTIFICATIONS = "notifications", _("notifications")
        ATTEMPTS = "attempts", _("attempts")
        SEND_TIME = "send_time", _("time to send")

    day = models.ForeignKey(DashboardDay, on_delete=models.CASCADE, related_name="counts")
    kind = models.CharField(max_length=16, choices=Kind)
    channel = models.CharField(max_length=16, blank=True, default="")
    status = models.CharField(
        max_length=16, blank=True, default="", help_text=_("Status, or an attempt's outcome.")
    )
    reason = models.CharField(max_length=200, blank=True, default="")
    example = models.CharField(max_length=200, blank=True, default="", db_default="")
    bucket = models.PositiveSmallIntegerField(null=True, blank=True)
    n = models.BigIntegerField(default=0)
    segments = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)

    class Meta:
        verbose_name = _("dashboard count")
        verbose_name_plural = _("dashboard counts")

    def __str__(self) -> str:
        return f"{self.day}: {self.kind} {self.channel} {self.status} {self.bucket or ''} {self.n}"
