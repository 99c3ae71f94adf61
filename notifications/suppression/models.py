"""Suppressed email addresses, and the inbox of the email provider's tracking events.

A ``Suppression`` is per address (stored lower-cased), not per contact: a contact given a new
address is not affected, and two users sharing a dead address both skip it. Lifting one keeps
the row (``lifted_at``, ``lifted_by``); at most one suppression of an address is active.

A ``TrackingEvent`` is what django-anymail's tracking webhook said, written by the signal
receiver and worked off by a task (``notifications.suppression.tracking``). Deliveries,
hard bounces, rejections and complaints go once worked off; soft bounces stay, processed,
for ``NOTIFY_SOFT_BOUNCE_DAYS``: they are the counts that suppress an address after
``NOTIFY_SOFT_BOUNCE_LIMIT`` of them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# The longest address SMTP allows (RFC 5321's path limit less its brackets).
ADDRESS_MAX_LENGTH = 254


class Suppression(models.Model):
    """An email address the email channel skips, why, and who lifted it."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", _("hard bounce")
        SOFT_BOUNCES = "soft_bounces", _("repeated soft bounces")
        COMPLAINT = "complaint", _("spam complaint")
        REJECTED = "rejected", _("rejected by the provider")
        UNKNOWN_MAILBOX = "unknown_mailbox", _("unknown mailbox")
        MANUAL = "manual", _("added by an operator")

    address = models.CharField(
        _("address"),
        max_length=ADDRESS_MAX_LENGTH,
        help_text=_("The email address, lower-cased."),
    )
    reason = models.CharField(_("reason"), max_length=16, choices=Reason)
    detail = models.TextField(
        _("detail"),
        blank=True,
        help_text=_("What the provider or the mail server said (its description, SMTP reply)."),
    )
    provider = models.CharField(
        _("provider"),
        max_length=32,
        blank=True,
        help_text=_("Who reported it: the email provider (Postmark, …) or SMTP."),
    )
    event_type = models.CharField(
        _("event"),
        max_length=32,
        blank=True,
        help_text=_("The provider's event as django-anymail names it (bounced, complained, …)."),
    )
    event_id = models.CharField(_("event id"), max_length=255, blank=True)
    provider_event = models.JSONField(
        _("provider event"),
        default=dict,
        blank=True,
        help_text=_("The event as the provider sent it."),
    )
    occurred_at = models.DateTimeField(_("happened at"), default=timezone.now)
    created_at = models.DateTimeField(_("suppressed at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("added by"),
    )
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("lifted by"),
    )

    class Meta:
        verbose_name = _("suppressed address")
        verbose_name_plural = _("suppressed addresses")
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one active suppression per address; also the index the policy step
            # reads a batch's suppressed addresses by.
            models.UniqueConstraint(
                fields=["address"],
                condition=Q(lifted_at__isnull=True),
                name="suppression_one_active",
            ),
        ]
        indexes = [models.Index(fields=["address", "lifted_at"], name="suppression_history_idx")]

    def __str__(self) -> str:
        return f"{self.address}: {self.get_reason_display()}"

    @property
    def active(self) -> bool:
        return self.lifted_at is None


class TrackingEvent(models.Model):
    """One tracking event of the email provider (django-anymail's webhook), as stored by the
    signal receiver before it is worked off."""

    class Kind(models.TextChoices):
        DELIVERED = "delivered", _("delivered")
        HARD_BOUNCE = "hard_bounce", _("hard bounce")
        SOFT_BOUNCE = "soft_bounce", _("soft bounce")
        COMPLAINT = "complaint", _("spam complaint")
        REJECTED = "rejected", _("rejected by the provider")

    provider = models.CharField(_("provider"), max_length=32)
    event_id = models.CharField(_("event id"), max_length=255, blank=True)
    event_type = models.CharField(_("event"), max_length=32)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind)
    address = models.CharField(_("address"), max_length=ADDRESS_MAX_LENGTH, blank=True)
    message_id = models.CharField(_("message id"), max_length=255, blank=True)
    detail = models.TextField(_("detail"), blank=True)
    provider_event = models.JSONField(_("provider event"), default=dict, blank=True)
    occurred_at = models.DateTimeField(_("happened at"))
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("email provider event")
        verbose_name_plural = _("email provider events")
        ordering = ["-received_at", "-id"]
        constraints = [
            # A provider sends an event again when our answer was lost: stored once. (One
            # event of Amazon SES may name several recipients: one row each.)
            models.UniqueConstraint(
                fields=["provider", "event_id", "kind", "address"],
                condition=~Q(event_id=""),
                name="tracking_event_once",
            ),
        ]
        indexes = [
            # The soft bounces of an address within the window.
            models.Index(fields=["address", "kind", "occurred_at"], name="tracking_address_idx"),
            # What is left to work off.
            models.Index(
                fields=["id"],
                condition=Q(processed_at__isnull=True),
                name="tracking_pending_idx",
            ),
            # Retention: soft bounces older than the window.
            models.Index(fields=["occurred_at"], name="tracking_occurred_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.get_kind_display()}: {self.address or self.message_id}"
