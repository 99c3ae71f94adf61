"""The operations app's rows: consumers' heartbeats (``operations.heartbeat``) and how far
retention has deleted (``operations.retention``)."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils.translation import gettext_lazy as _


class ConsumerHeartbeat(models.Model):
    """One running consumer process, kept fresh by its heartbeat thread and deleted when it
    stops cleanly (``operations.heartbeat``)."""

    host = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("process id"))
    started_at = models.DateTimeField(_("started at"))
    seen_at = models.DateTimeField(_("last seen at"), db_index=True)
    workers = models.PositiveIntegerField(_("worker threads"), default=0)
    paced_threads = models.PositiveIntegerField(_("paced threads"), default=0)

    class Meta:
        verbose_name = _("consumer heartbeat")
        verbose_name_plural = _("consumer heartbeats")
        ordering = ["host", "pid"]

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"


class RetentionWatermark(models.Model):
    """How far retention has deleted: notifications and attempts dated before
    ``pruned_before`` may be gone. One row (pk 1), only ever moved later.

    The dashboard's rollup keeps its days before this instant as they were rolled up
    (``notifications.rollup``): their rows can no longer be counted again.
    """

    pruned_before = models.DateTimeField(_("pruned before"))

    class Meta:
        verbose_name = _("retention watermark")
        verbose_name_plural = _("retention watermarks")

    def __str__(self) -> str:
        return f"pruned before {self.pruned_before:%Y-%m-%d %H:%M}"

    @classmethod
    def pruned_before_now(cls) -> datetime | None:
        """Before when rows may have been deleted; None while retention never deleted any."""
        return cls.objects.filter(pk=1).values_list("pruned_before", flat=True).first()
