"""Campaigns: one message sent to many users, and the recipients it skipped."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notifications.models.templates import Template


class Campaign(models.Model):
    """One message (or template) sent to many users at once, and how that send is going."""

    class State(models.TextChoices):
        CREATING = "creating", _("Creating")
        READY = "ready", _("Created")
        FAILED = "failed", _("Not created")
        CANCELLED = "cancelled", _("Cancelled")

    name = models.CharField(_("name"), max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    language = models.CharField(
        _("language"), max_length=8, blank=True, help_text=_("The operator's language.")
    )
    template = models.ForeignKey(
        Template,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name=_("template"),
    )
    context = models.JSONField(_("context"), default=dict, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    message = models.TextField(_("message"), blank=True)
    channels = models.JSONField(_("channels"), default=list, blank=True)
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    # "At 10:00 in each recipient's local time": that wall time (2026-12-07T10:00), read in
    # each recipient's time zone when their notification is made. Blank: send_at, or now.
    local_send_at = models.CharField(
        _("send at, local time"), max_length=16, blank=True, db_default=""
    )
    category = models.ForeignKey(
        "preferences.Category",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("category"),
    )
    # Who gets it: the ids ticked (users, or users of the contacts ticked), or everyone the
    # changelist of ``audience_model`` shows for ``audience_query`` (re-evaluated when the
    # notifications are created).
    audience_model = models.CharField(_("audience"), max_length=100, default="auth.user")
    audience_ids = models.JSONField(default=list, blank=True, editable=False)
    audience_query = models.TextField(_("changelist filter"), blank=True)
    audience_all = models.BooleanField(_("everyone matching the filter"), default=False)
    audience_size = models.PositiveIntegerField(_("audience size"), default=0)
    state = models.CharField(_("state"), max_length=16, choices=State, default=State.CREATING)
    # The last recipient (user id) whose notification exists: creation resumes after it.
    cursor = models.BigIntegerField(default=0, editable=False)
    # "Cancel the rest" under way: the last notification id cancelled, None once all are
    # (``notifications.cancelling``); the sweeper resumes a cancel left midway.
    cancel_cursor = models.BigIntegerField(null=True, blank=True, editable=False)
    recipients = models.PositiveIntegerField(_("notifications created"), default=0)
    skipped = models.PositiveIntegerField(_("recipients skipped"), default=0)
    error = models.TextField(_("error"), blank=True)
    created_all_at = models.DateTimeField(_("all created at"), null=True, blank=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "updated_at"], name="campaign_state_idx")]

    def __str__(self) -> str:
        return self.name


class CampaignSkip(models.Model):
    """A recipient of a campaign who got no notification, and why."""

    class Reason(models.TextChoices):
        OPTED_OUT = "opted_out", _("opted out of every channel")
        TURNED_OFF = "turned_off", _("turned off this category on every channel")
        NO_ADDRESS = "no_address", _("no address on any channel")
        INVALID = "invalid", _("the message could not be made")

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="skips", verbose_name=_("campaign")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("user"),
    )
    reason = models.CharField(_("reason"), max_length=16, choices=Reason)
    # channel -> "opted_out" / "no_address", for the first two reasons.
    channels = models.JSONField(_("channels"), default=dict, blank=True)
    detail = models.TextField(_("detail"), blank=True)

    class Meta:
        verbose_name = _("skipped recipient")
        verbose_name_plural = _("skipped recipients")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.user}: {self.get_reason_display()}"
