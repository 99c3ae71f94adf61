"""Notifications, the delivery attempts that record every try, and the SMS parts whose
receipts say how those tries ended."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThan
from django.utils.translation import gettext_lazy as _

from notifications.models.campaigns import Campaign
from notifications.models.choices import Channel
from notifications.models.templates import Template
from notifications.reasons import reason_of
from notifications.validators import validate_message, validate_subject


class Notification(models.Model):
    """One message to one user; its row is the source of truth for its delivery."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SCHEDULED = "scheduled", _("Scheduled")
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        UNDELIVERED = "undelivered", _("Undelivered")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")
        # The recipient's choices left no channel (every one turned off for its category),
        # or a frequency cap said skip: not sent, on purpose.
        SUPPRESSED = "suppressed", _("Suppressed")
        # Waiting in a digest (``digest``), which carries it: it ends as the digest does.
        BATCHED = "batched", _("In a digest")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        db_index=False,  # the (user, created_at, id) index serves it
        related_name="notifications",
        verbose_name=_("user"),
    )
    subject = models.CharField(
        _("subject"),
        max_length=200,
        blank=True,
        validators=[validate_subject],
        help_text=_("Email subject; a default is used when blank."),
    )
    message = models.TextField(
        _("message"),
        validators=[validate_message],
        error_messages={"blank": _("The message is empty; write something to send.")},
    )
    channels = models.JSONField(
        _("channels"),
        default=list,
        blank=True,
        help_text=_(
            "Channels to try, in order, for this notification only; empty: all, in "
            "the service's order."
        ),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.PENDING)
    channel = models.CharField(
        _("delivered via"), max_length=16, choices=Channel, blank=True, default=""
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True)
    send_at = models.DateTimeField(
        _("send at"), null=True, blank=True, help_text=_("Not sent before this time.")
    )
    expires_at = models.DateTimeField(
        _("expires at"),
        null=True,
        blank=True,
        help_text=_("Never delivered after this time; it ends expired instead."),
    )
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    rounds = models.PositiveIntegerField(
        _("rounds"),
        default=0,
        help_text=_("How many times the channel chain has been tried in this run."),
    )
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")
    # Delivery state of the current run (since the last Send/Resend): the channels that failed
    # permanently, the parts of a split message already accepted, where a deferred round goes
    # on. See notifications.delivery.Progress.
    progress = models.JSONField(default=dict, blank=True, editable=False)
    # Unique where given (Meta's constraint): NULL, not "", for most rows, which the
    # constraint's partial index leaves out.
    idempotency_key = models.CharField(  # noqa: DJ001
        _("idempotency key"), max_length=200, null=True, blank=True
    )
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,  # the (campaign, status) index serves it
        related_name="notifications",
        verbose_name=_("campaign"),
    )
    template = models.ForeignKey(
        Template,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,  # a partial index of the rows that have one (Meta)
        related_name="+",
        verbose_name=_("template"),
    )
    # Its message is its campaign's, as every recipient of a campaign's message has it: the
    # admin's search finds it by the campaign's message, and the message's trigram index
    # leaves it out (indexing the same text a million times was most of a campaign's
    # creation on PostgreSQL). Its campaign deleted, it is indexed as any other.
    campaign_message = models.BooleanField(default=False, db_default=False, editable=False)
    # What each channel sends when it was rendered from a template at creation:
    # {"language": "ru", "telegram": {"text", "parse_mode"}, "email": {"subject", "text",
    # "html"}, "sms": {"text"}}. Empty: every channel sends ``message`` (notifications.content).
    rendered = models.JSONField(_("rendered"), default=dict, blank=True, editable=False)
    category = models.ForeignKey(
        "preferences.Category",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,  # a partial index of the rows that have one (Meta)
        related_name="+",
        verbose_name=_("category"),
        help_text=_("What it is about; blank: the default category."),
    )
    # A digest: notifications of one user, category and ``digest_key`` collected for the
    # category's digest window and sent as one. An item points at the digest that carries
    # it (``digest``); the digest itself has ``digest_size`` > 0 items.
    digest_key = models.CharField(
        _("digest key"), max_length=200, blank=True, default="", db_default=""
    )
    digest = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,  # a partial index of the rows that have one (Meta)
        related_name="items",
        verbose_name=_("sent in digest"),
    )
    digest_size = models.PositiveIntegerField(_("items"), default=0, db_default=0)
    # The Telegram invite this notification carries: its message holds the link with the
    # token masked, filled in only in memory when it is sent (notifications.invite_tokens).
    telegram_link = models.ForeignKey(
        "TelegramLink",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        db_index=False,  # a partial index of the rows that have one (Meta)
        related_name="+",
        verbose_name=_("Telegram link"),
    )

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [
            # What waits or is being sent, by when it is due (the sweeper, the dashboard's
            # queue): a row that ends writes no entry here, and the index stays the size of
            # the work at hand, not of the table's history.
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=Q(status__in=["queued", "scheduled", "sending"]),
                name="notif_waiting_due_idx",
            ),
            # The sweeper's look for expired leases: only the rows being sent (a few hundred)
            # are in it, so no other row's insert or status change writes an entry.
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status="sending"),
                name="notif_sending_lease_idx",
            ),
            models.Index(fields=["campaign", "status"], name="notif_campaign_status_idx"),
            # The admin's list of one campaign, newest first.
            models.Index(
                fields=["campaign", "created_at", "id"], name="notif_campaign_created_idx"
            ),
            # The API's list: newest first, by user, status or channel, at any depth (keyset).
            models.Index(fields=["user", "created_at", "id"], name="notif_user_created_idx"),
            models.Index(fields=["status", "created_at", "id"], name="notif_status_created_idx"),
            # Only the rows a channel delivered (a list asks for one channel): a row waiting
            # or being sent writes no entry here.
            models.Index(
                fields=["channel", "created_at", "id"],
                condition=~Q(channel=""),
                name="notif_channel_created_idx",
            ),
            # Most rows have none of these: each index holds only the rows that have one, so
            # a campaign's insert (and each status change) writes fewer index entries.
            *(
                models.Index(
                    fields=[name],
                    condition=Q(**{f"{name}__isnull": False}),
                    name=f"notif_{name}_idx",
                )
                for name in ("template", "digest", "telegram_link", "category")
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=GreaterThan(Length("message"), 0), name="notification_message_not_empty"
            ),
            # One open digest per user, category and key: items arriving at once join the
            # same one (the second opener meets this and joins instead).
            models.UniqueConstraint(
                fields=["user", "category", "digest_key"],
                condition=Q(status="scheduled", digest_size__gt=0),
                name="one_open_digest",
            ),
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="notif_idempotency_key_uniq",
            ),
        ]

    def __str__(self) -> str:
        return _("Notification #%(id)s (%(status)s)") % {
            "id": self.pk,
            "status": self.get_status_display(),
        }


class ReceiptStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    UNDELIVERED = "undelivered", _("Undelivered")


class DeliveryAttempt(models.Model):
    """One try of one transport for one notification."""

    class Outcome(models.TextChoices):
        SUCCESS = "success", _("Success")
        PARTIAL = "partial", _("Partly sent")
        TRANSIENT = "transient", _("Transient error")
        AMBIGUOUS = "ambiguous", _("Unknown (may have been accepted)")
        PERMANENT = "permanent", _("Permanent error")
        RATE_LIMITED = "rate_limited", _("Rate limited")
        DEFERRED = "deferred", _("Deferred")
        SKIPPED = "skipped", _("Skipped")

    notification = models.ForeignKey(
        Notification,
        on_delete=models.CASCADE,
        related_name="attempts",
        verbose_name=_("notification"),
    )
    round = models.PositiveIntegerField(_("round"), default=1)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel, blank=True)
    transport = models.CharField(_("transport"), max_length=32)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome)
    error = models.TextField(_("error"), blank=True, default="")
    # The error without addresses, ids and numbers (notifications.reasons): what the dashboard
    # counts failures by. Blank on attempts recorded before it was.
    reason = models.CharField(
        _("reason"), max_length=200, blank=True, default="", db_default="", editable=False
    )
    provider_message_id = models.CharField(
        _("provider message id"), max_length=255, blank=True, default=""
    )
    started_at = models.DateTimeField(_("started at"))
    duration_ms = models.PositiveIntegerField(_("duration, ms"), default=0)
    cost = models.DecimalField(
        _("cost"),
        max_digits=10,
        decimal_places=4,
        null=True,
        blank=True,
        help_text=_("What the provider charged."),
    )
    segments = models.PositiveSmallIntegerField(
        _("segments"),
        null=True,
        blank=True,
        help_text=_("How many SMS parts the text was sent as."),
    )
    # Delivery receipts: SMS receipts, and an email provider's delivery and bounce events
    # (Telegram has none for bots).
    receipt_status = models.CharField(
        _("receipt"),
        max_length=16,
        choices=ReceiptStatus,
        blank=True,
        default="",
        help_text=_("What the provider's delivery receipts say (blank: none yet)."),
    )
    receipt_at = models.DateTimeField(_("receipt time"), null=True, blank=True)
    receipt_error = models.CharField(
        _("receipt detail"),
        max_length=100,
        blank=True,
        default="",
        help_text=_(
            "The provider's status and error code from the receipt (e.g. SMPP "
            '"UNDELIV err:001", SMS Aero "status 2").'
        ),
    )

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["started_at", "id"]
        indexes = [
            # The dashboard's period queries.
            models.Index(fields=["started_at", "channel"], name="attempt_started_idx"),
            # An email provider's delivery and bounce events name the message
            # (notifications.suppression.tracking).
            models.Index(
                fields=["provider_message_id"],
                condition=Q(channel="email"),
                name="attempt_email_message_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display() or '—'}/{self.transport}: {self.get_outcome_display()}"

    def save(self, *args, **kwargs) -> None:
        """Saved with its reason (the round's writer sets it itself: ``delivery``)."""
        if not self.reason:
            self.reason = reason_of(self.error)
        super().save(*args, **kwargs)


class SmsPart(models.Model):
    """One SMS (or one part of a concatenated SMS) a provider took, and what its receipts say.

    Keyed by (transport, provider message id). A receipt for an id not known yet (it raced
    the write of the attempt that sent it) is stored here with no attempt, and matched when
    that attempt is written (``notifications.receipts``).
    """

    transport = models.CharField(_("transport"), max_length=32)
    message_id = models.CharField(_("provider message id"), max_length=255)
    attempt = models.ForeignKey(
        DeliveryAttempt,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="sms_parts",
        verbose_name=_("delivery attempt"),
    )
    part = models.PositiveSmallIntegerField(
        _("part"), null=True, blank=True, help_text=_("1, 2, … of a split SMS")
    )
    state = models.CharField(
        _("state"), max_length=16, choices=ReceiptStatus, default=ReceiptStatus.PENDING
    )
    provider_status = models.CharField(_("provider status"), max_length=64, blank=True, default="")
    error_code = models.CharField(_("error code"), max_length=32, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    received_at = models.DateTimeField(
        _("first receipt at"),
        null=True,
        blank=True,
        help_text=_("When the first receipt for it came."),
    )
    done_at = models.DateTimeField(
        _("final at"), null=True, blank=True, help_text=_("When it ended, final.")
    )
    checked_at = models.DateTimeField(
        _("checked at"),
        null=True,
        blank=True,
        help_text=_("When its status was last asked of the provider."),
    )

    class Meta:
        verbose_name = _("SMS part")
        verbose_name_plural = _("SMS parts")
        constraints = [
            models.UniqueConstraint(fields=["transport", "message_id"], name="sms_part_unique_id"),
        ]
        indexes = [models.Index(fields=["transport", "state"], name="sms_part_state_idx")]

    def __str__(self) -> str:
        return f"{self.transport} {self.message_id}: {self.get_state_display()}"
