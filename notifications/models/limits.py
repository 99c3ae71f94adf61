"""Send limits every worker and host share: the SMS daily count and the pace slots."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class SmsDailyCount(models.Model):
    """How many SMS were sent (or are being sent) on one day: enforces NOTIFY_SMS_DAILY_LIMIT.

    A slot is taken with one conditional UPDATE before an SMS is sent and given back if the
    send fails, so the limit holds across every worker and host.
    """

    day = models.DateField(_("day"), unique=True)
    sent = models.PositiveIntegerField(_("sent"), default=0)

    class Meta:
        verbose_name = _("SMS daily count")
        verbose_name_plural = _("SMS daily counts")

    def __str__(self) -> str:
        return f"{self.day}: {self.sent} SMS"


class RateLimitSlot(models.Model):
    """When the next send of one pace (all of Telegram, or one chat) may start.

    The database copy of ``notifications.ratelimit``'s schedule, used when the queue is not
    Redis. ``next_at`` is a Unix time in seconds.
    """

    name = models.CharField(_("name"), max_length=200, primary_key=True)
    next_at = models.FloatField(_("next at"))

    class Meta:
        verbose_name = _("rate limit slot")
        verbose_name_plural = _("rate limit slots")

    def __str__(self) -> str:
        return f"{self.name}: next at {self.next_at:.3f}"
