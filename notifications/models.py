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
        help_text="Numeric chat id (negative for groups) or @channelusername. "
        "The user must have sent /start to the bot.",
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
            # The API's list: newest first, by user, status or channel, at any depth (keyset).
            models.Index(fields=["user", "created_at", "id"], name="notif_user_created_idx"),
            models.Index(fields=["status", "created_at", "id"], name="notif_status_created_idx"),
            models.Index(fields=["channel", "created_at", "id"], name="notif_channel_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=GreaterThan(Length("message"), 0), name="notification_message_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return f"Notification #{self.pk} ({self.get_status_display()})"


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


class ApiKey(models.Model):
    """One client application's key to the HTTP API, stored as a salted hash.

    The key itself (``nsk_`` + ``prefix`` + a secret of 256 random bits) is shown once, when
    it is made (``notifications.api_keys``); ``prefix`` finds the row and names the key in
    lists and logs.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        WRITE = "write", "Read and write"

    name = models.CharField(max_length=100, help_text="Which application uses this key.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    salt = models.CharField(max_length=32, editable=False)
    key_hash = models.CharField("key hash", max_length=64, editable=False)
    scope = models.CharField(max_length=8, choices=Scope, default=Scope.WRITE)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(
        "last used", null=True, blank=True, help_text="Updated at most once a minute."
    )
    revoked_at = models.DateTimeField("revoked", null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} (nsk_{self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiIdempotencyKey(models.Model):
    """An ``Idempotency-Key`` an API client sent, with what it asked and what it got.

    ``client`` names the caller (``key:<ApiKey prefix>`` or ``user:<user id>``): keys of
    different clients never meet. ``fingerprint`` is a hash of the method, path and body; the
    same key with another fingerprint is refused. Kept at least
    ``NOTIFY_API_IDEMPOTENCY_HOURS`` (pruned hourly by ``tasks.prune_idempotency_keys``).
    """

    client = models.CharField(max_length=40)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "API idempotency key"
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="api_idempotency_client_key"),
        ]

    def __str__(self) -> str:
        return f"{self.client}: {self.key}"
