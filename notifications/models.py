"""Contacts, notifications and the delivery attempts that record every try."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThan

from notifications.validators import (
    normalize_phone,
    validate_message,
    validate_phone,
    validate_subject,
    validate_telegram_chat_id,
)


class Channel(models.TextChoices):
    TELEGRAM = "telegram", "Telegram"
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


class UserContact(models.Model):
    """How to reach one user; created automatically with every user."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact"
    )
    telegram_chat_id = models.CharField(
        "Telegram chat id",
        max_length=64,
        blank=True,
        validators=[validate_telegram_chat_id],
        help_text="Filled in by the bot when the user opens their invite link (below). Or "
        "type a numeric chat id (negative for groups) or @channelusername; the user must "
        "have sent /start to the bot.",
    )
    email = models.EmailField(
        blank=True, help_text="Leave blank to use the email address of the user account."
    )
    phone = models.CharField(
        max_length=20,
        blank=True,
        validators=[validate_phone],
        help_text="Mobile number, stored in international form (+79161234567).",
    )
    telegram_opt_out = models.BooleanField("no Telegram", default=False)
    telegram_blocked = models.BooleanField(
        "bot blocked",
        default=False,
        help_text="The user blocked the bot (or removed it from the group): Telegram is skipped "
        "until they unblock it or link again.",
    )
    email_opt_out = models.BooleanField("no email", default=False)
    sms_opt_out = models.BooleanField("no SMS", default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "user contact"

    def __str__(self) -> str:
        return f"Contact of {self.user}"

    def save(self, *args, **kwargs) -> None:
        # Code paths that skip full_clean() still store the one normalised phone form.
        if self.phone:
            self.phone = normalize_phone(self.phone)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        self.telegram_chat_id = self.telegram_chat_id.strip()
        self.email = self.email.strip()
        if self.phone:
            try:
                self.phone = normalize_phone(self.phone)
            except ValidationError:
                pass  # the field's own validator reports it, next to the field

    @property
    def effective_email(self) -> str:
        return self.email or getattr(self.user, "email", "") or ""


class Notification(models.Model):
    """One message to one user; its row is the source of truth for its delivery."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SCHEDULED = "scheduled", "Scheduled"
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        UNDELIVERED = "undelivered", "Undelivered"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"
        CANCELLED = "cancelled", "Cancelled"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    subject = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_subject],
        help_text="Email subject; a default is used when blank.",
    )
    message = models.TextField(
        validators=[validate_message],
        error_messages={"blank": "The message is empty; write something to send."},
    )
    channels = models.JSONField(
        default=list,
        blank=True,
        help_text="Channels to try, in order, for this notification only; empty: all, in "
        "the service's order.",
    )
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    channel = models.CharField(
        "delivered via", max_length=16, choices=Channel, blank=True, default=""
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    send_at = models.DateTimeField(
        "send at", null=True, blank=True, help_text="Not sent before this time."
    )
    expires_at = models.DateTimeField(
        "expires at",
        null=True,
        blank=True,
        help_text="Never delivered after this time; it ends expired instead.",
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    rounds = models.PositiveIntegerField(
        default=0, help_text="How many times the channel chain has been tried in this run."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # Delivery state of the current run (since the last Send/Resend): the channels that failed
    # permanently, the parts of a split message already accepted, where a deferred round goes
    # on. See notifications.delivery.Progress.
    progress = models.JSONField(default=dict, blank=True, editable=False)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notif_status_due_idx"),
            models.Index(fields=["status", "lease_expires_at"], name="notif_status_lease_idx"),
            models.Index(fields=["channel"], name="notif_channel_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=GreaterThan(Length("message"), 0), name="notification_message_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return f"Notification #{self.pk} ({self.get_status_display()})"


class ReceiptStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"


class DeliveryAttempt(models.Model):
    """One try of one transport for one notification."""

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        PARTIAL = "partial", "Partly sent"
        TRANSIENT = "transient", "Transient error"
        AMBIGUOUS = "ambiguous", "Unknown (may have been accepted)"
        PERMANENT = "permanent", "Permanent error"
        RATE_LIMITED = "rate_limited", "Rate limited"
        DEFERRED = "deferred", "Deferred"
        SKIPPED = "skipped", "Skipped"

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="attempts"
    )
    round = models.PositiveIntegerField(default=1)
    channel = models.CharField(max_length=16, choices=Channel, blank=True)
    transport = models.CharField(max_length=32)
    outcome = models.CharField(max_length=16, choices=Outcome)
    error = models.TextField(blank=True, default="")
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="What the provider charged.",
    )
    segments = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="How many SMS parts the text was sent as."
    )
    # Delivery receipts (SMS only: Telegram has none for bots, email none here).
    receipt_status = models.CharField(
        "receipt",
        max_length=16,
        choices=ReceiptStatus,
        blank=True,
        default="",
        help_text="What the provider's delivery receipts say (blank: none yet).",
    )
    receipt_at = models.DateTimeField("receipt time", null=True, blank=True)
    receipt_error = models.CharField(
        "receipt detail",
        max_length=100,
        blank=True,
        default="",
        help_text="The provider's status and error code from the receipt (e.g. SMPP "
        '"UNDELIV err:001", SMS Aero "status 2").',
    )

    class Meta:
        ordering = ["started_at", "id"]

    def __str__(self) -> str:
        return f"{self.channel}/{self.transport}: {self.outcome}"


class SmsDailyCount(models.Model):
    """How many SMS were sent (or are being sent) on one day: enforces NOTIFY_SMS_DAILY_LIMIT.

    A slot is taken with one conditional UPDATE before an SMS is sent and given back if the
    send fails, so the limit holds across every worker and host.
    """

    day = models.DateField(unique=True)
    sent = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "SMS daily count"

    def __str__(self) -> str:
        return f"{self.day}: {self.sent} SMS"


class RateLimitSlot(models.Model):
    """When the next send of one pace (all of Telegram, or one chat) may start.

    The database copy of ``notifications.ratelimit``'s schedule, used when the queue is not
    Redis. ``next_at`` is a Unix time in seconds.
    """

    name = models.CharField(max_length=200, primary_key=True)
    next_at = models.FloatField()

    class Meta:
        verbose_name = "rate limit slot"

    def __str__(self) -> str:
        return f"{self.name}: next at {self.next_at:.3f}"


class SmsPart(models.Model):
    """One SMS (or one part of a concatenated SMS) a provider took, and what its receipts say.

    Keyed by (transport, provider message id). A receipt for an id not known yet (it raced
    the write of the attempt that sent it) is stored here with no attempt, and matched when
    that attempt is written (``notifications.receipts``).
    """

    transport = models.CharField(max_length=32)
    message_id = models.CharField("provider message id", max_length=255)
    attempt = models.ForeignKey(
        DeliveryAttempt,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="sms_parts",
    )
    part = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="1, 2, … of a split SMS"
    )
    state = models.CharField(max_length=16, choices=ReceiptStatus, default=ReceiptStatus.PENDING)
    provider_status = models.CharField(max_length=64, blank=True, default="")
    error_code = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    received_at = models.DateTimeField(
        null=True, blank=True, help_text="When the first receipt for it came."
    )
    done_at = models.DateTimeField(null=True, blank=True, help_text="When it ended, final.")
    checked_at = models.DateTimeField(
        null=True, blank=True, help_text="When its status was last asked of the provider."
    )

    class Meta:
        verbose_name = "SMS part"
        constraints = [
            models.UniqueConstraint(fields=["transport", "message_id"], name="sms_part_unique_id"),
        ]
        indexes = [models.Index(fields=["transport", "state"], name="sms_part_state_idx")]

    def __str__(self) -> str:
        return f"{self.transport} {self.message_id}: {self.state}"


class TelegramLink(models.Model):
    """A single-use ``/start`` token that links a Telegram chat to a contact.

    The token is never stored: the row keeps its SHA-256 (to find it) and a random nonce from
    which the service derives the token again with SECRET_KEY (to show the same link on the
    contact's page). A copy of the database alone reveals no live token.
    """

    class Kind(models.TextChoices):
        PAGE = "page", "Shown on the contact's page"
        INVITE = "invite", "Sent as an invite"

    contact = models.ForeignKey(
        UserContact, on_delete=models.CASCADE, related_name="telegram_links"
    )
    kind = models.CharField(max_length=16, choices=Kind)
    token_hash = models.CharField(max_length=64, unique=True)
    nonce = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by_chat = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        verbose_name = "Telegram link"
        indexes = [
            models.Index(fields=["contact", "kind", "created_at"], name="tg_link_contact_idx")
        ]

    def __str__(self) -> str:
        return f"Telegram link for {self.contact_id} ({self.kind})"


class TelegramUpdate(models.Model):
    """A Bot API update already handled: a replayed update (same bot, same id) changes
    nothing. Pruned after a while (Telegram keeps undelivered updates for 24 hours)."""

    bot_id = models.BigIntegerField()
    update_id = models.BigIntegerField()
    kind = models.CharField(max_length=32, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "Telegram update"
        constraints = [
            models.UniqueConstraint(fields=["bot_id", "update_id"], name="tg_update_unique_id"),
        ]

    def __str__(self) -> str:
        return f"update {self.update_id} of bot {self.bot_id}"


class TelegramPollOffset(models.Model):
    """Where ``manage.py telegram_poll`` goes on from: the next getUpdates offset per bot."""

    bot_id = models.BigIntegerField(primary_key=True)
    next_offset = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Telegram poll offset"

    def __str__(self) -> str:
        return f"bot {self.bot_id}: next offset {self.next_offset}"
