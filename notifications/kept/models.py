"""The kept counts: one row for each kind of numbers (the dashboard of a period, a campaign's
progress), shared by every web process on every host."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class KeptCount(models.Model):
    """The last numbers counted for ``key``, and who is counting them again.

    ``counted_at`` is when that count began (its numbers are as of then), ``kept_at`` when
    it was written: a row written recently was asked for recently. ``counting_until`` is a
    lease: a process counting the key now holds it until then, and the others show the kept
    numbers meanwhile instead of counting too (a process that died while counting leaves it
    to run out)."""

    key = models.CharField(_("key"), max_length=100, primary_key=True)
    value = models.JSONField(_("value"), null=True, blank=True)
    counted_at = models.DateTimeField(_("counted at"), null=True, blank=True)
    kept_at = models.DateTimeField(_("kept at"), null=True, blank=True)
    counting_until = models.DateTimeField(_("being counted until"), null=True, blank=True)

    class Meta:
        verbose_name = _("kept count")
        verbose_name_plural = _("kept counts")

    def __str__(self) -> str:
        return self.key
