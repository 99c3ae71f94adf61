"""Contacts, notifications and the delivery attempts that record every try."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import GreaterThan
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notifications.validators import (
    normalize_phone,
    validate_message,
    validate_phone,
    validate_subject,
    validate_telegram_chat_id,
)


class Channel(models.TextChoices):
    TELEGRAM = "telegram", _("Telegram")
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")


# The languages templates are written in (and a contact may ask for).
LANGUAGE_CHOICES = [("ru", _("Russian")), ("en", _("English"))]


class UserContact(models.Model):
    """How to reach one user; created automatically with every user."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="contact",
        verbose_name=_("user"),
    )
    telegram_chat_id = models.CharField(
        _("Telegram chat id"),
        max_length=64,
        blank=True,
        validators=[validate_telegram_chat_id],
        help_text=_(
            "Filled in by the bot when the user opens their invite link (below). Or type a "
            "numeric chat id (negative for groups) or @channelusername; the user must have "
            "sent /start to the bot."
        ),
    )
    email = models.EmailField(
        _("email"),
        blank=True,
        help_text=_("Leave blank to use the email address of the user account."),
    )
    phone = models.CharField(
        _("phone"),
        max_length=20,
        blank=True,
        validators=[validate_phone],
        help_text=_("Mobile number, stored in international form (+79161234567)."),
    )
    telegram_opt_out = models.BooleanField(_("no Telegram"), default=False)
    telegram_blocked = models.BooleanField(
        _("bot blocked"),
        default=False,
        help_text=_(
            "The user blocked the bot (or removed it from the group): Telegram is skipped "
            "until they unblock it or link again."
        ),
    )
    email_opt_out = models.BooleanField(_("no email"), default=False)
    sms_opt_out = models.BooleanField(_("no SMS"), default=False)
    language = models.CharField(
        _("language"),
        max_length=8,
        blank=True,
        choices=LANGUAGE_CHOICES,
        help_text=_(
            "The language of the templates this user gets; blank: the service's language "
            "(DJANGO_LANGUAGE_CODE)."
        ),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("user contact")
        verbose_name_plural = _("user contacts")

    def __str__(self) -> str:
        return _("Contact of %(user)s") % {"user": self.user}

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


class Template(models.Model):
    """A message written once per channel and language; its variables are filled from the
    recipient's fields and a JSON context when a notification is created."""

    key = models.SlugField(
        _("key"),
        max_length=100,
        unique=True,
        help_text=_("How code and the API name this template, e.g. maintenance."),
    )
    name = models.CharField(_("name"), max_length=200)
    example_context = models.JSONField(
        _("example context"),
        default=dict,
        blank=True,
        help_text=_(
            "Sample values of the template's own variables, as a JSON object, e.g. "
            '{"start": "02:00"}; used by the preview and the checks on save.'
        ),
    )
    telegram_text_ru = models.TextField(_("Telegram text"), blank=True)
    email_subject_ru = models.CharField(_("email subject"), max_length=200, blank=True)
    email_text_ru = models.TextField(_("email text"), blank=True)
    email_html_ru = models.TextField(_("email HTML"), blank=True)
    sms_text_ru = models.TextField(_("SMS text"), blank=True)
    telegram_text_en = models.TextField(_("Telegram text"), blank=True)
    email_subject_en = models.CharField(_("email subject"), max_length=200, blank=True)
    email_text_en = models.TextField(_("email text"), blank=True)
    email_html_en = models.TextField(_("email HTML"), blank=True)
    sms_text_en = models.TextField(_("SMS text"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    # The parts of one language version; every one but the HTML is required.
    PARTS = ("telegram_text", "email_subject", "email_text", "email_html", "sms_text")
    REQUIRED_PARTS = ("telegram_text", "email_subject", "email_text", "sms_text")

    class Meta:
        verbose_name = _("template")
        verbose_name_plural = _("templates")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def part(self, name: str, language: str) -> str:
        return getattr(self, f"{name}_{language}")

    def languages(self) -> list[str]:
        """The languages this template is written in (every required part filled)."""
        return [
            code
            for code, _label in LANGUAGE_CHOICES
            if all(self.part(name, code).strip() for name in self.REQUIRED_PARTS)
        ]


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

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
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
    idempotency_key = models.CharField(
        _("idempotency key"), max_length=200, null=True, blank=True, unique=True
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
        related_name="+",
        verbose_name=_("template"),
    )
    # What each channel sends when it was rendered from a template at creation:
    # {"language": "ru", "telegram": {"text", "parse_mode"}, "email": {"subject", "text",
    # "html"}, "sms": {"text"}}. Empty: every channel sends ``message`` (notifications.content).
    rendered = models.JSONField(_("rendered"), default=dict, blank=True, editable=False)
    # The Telegram invite this notification carries: its message holds the link with the
    # token masked, filled in only in memory when it is sent (notifications.invite_tokens).
    telegram_link = models.ForeignKey(
        "TelegramLink",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name=_("Telegram link"),
    )

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notif_status_due_idx"),
            models.Index(fields=["status", "lease_expires_at"], name="notif_status_lease_idx"),
            models.Index(fields=["channel"], name="notif_channel_idx"),
            models.Index(fields=["campaign", "status"], name="notif_campaign_status_idx"),
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
    # Delivery receipts (SMS only: Telegram has none for bots, email none here).
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
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display() or '—'}/{self.transport}: {self.get_outcome_display()}"


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


class TelegramLink(models.Model):
    """A single-use ``/start`` token that links a Telegram chat to a contact.

    The token is never stored: the row keeps its SHA-256 (to find it) and a random nonce from
    which the service derives the token again with SECRET_KEY (to show the same link on the
    contact's page). A copy of the database alone reveals no live token.
    """

    class Kind(models.TextChoices):
        PAGE = "page", _("Shown on the contact's page")
        INVITE = "invite", _("Sent as an invite")

    contact = models.ForeignKey(
        UserContact,
        on_delete=models.CASCADE,
        related_name="telegram_links",
        verbose_name=_("user contact"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind)
    token_hash = models.CharField(_("token hash"), max_length=64, unique=True)
    nonce = models.CharField(_("nonce"), max_length=64)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    used_by_chat = models.CharField(_("used by chat"), max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("Telegram link")
        verbose_name_plural = _("Telegram links")
        indexes = [
            models.Index(fields=["contact", "kind", "created_at"], name="tg_link_contact_idx")
        ]

    def __str__(self) -> str:
        return _("Telegram link #%(id)s (%(kind)s)") % {
            "id": self.pk,
            "kind": self.get_kind_display(),
        }


class TelegramUpdate(models.Model):
    """A Bot API update already handled: a replayed update (same bot, same id) changes
    nothing. Pruned after a while (Telegram keeps undelivered updates for 24 hours)."""

    bot_id = models.BigIntegerField(_("bot id"))
    update_id = models.BigIntegerField(_("update id"))
    kind = models.CharField(_("kind"), max_length=32, blank=True, default="")
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("Telegram update")
        verbose_name_plural = _("Telegram updates")
        constraints = [
            models.UniqueConstraint(fields=["bot_id", "update_id"], name="tg_update_unique_id"),
        ]

    def __str__(self) -> str:
        return f"update {self.update_id} of bot {self.bot_id}"


class TelegramPollOffset(models.Model):
    """Where ``manage.py telegram_poll`` goes on from: the next getUpdates offset per bot."""

    bot_id = models.BigIntegerField(_("bot id"), primary_key=True)
    next_offset = models.BigIntegerField(_("next offset"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("Telegram poll offset")
        verbose_name_plural = _("Telegram poll offsets")

    def __str__(self) -> str:
        return f"bot {self.bot_id}: next offset {self.next_offset}"


class ApiKey(models.Model):
    """One client application's key to the HTTP API, stored as a salted hash.

    The key itself (``nsk_`` + ``prefix`` + a secret of 256 random bits) is shown once, when
    it is made (``notifications.api_keys``); ``prefix`` finds the row and names the key in
    lists and logs.
    """

    class Scope(models.TextChoices):
        READ = "read", _("Read only")
        WRITE = "write", _("Read and write")

    name = models.CharField(
        _("name"), max_length=100, help_text=_("Which application uses this key.")
    )
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    salt = models.CharField(_("salt"), max_length=32, editable=False)
    key_hash = models.CharField(_("key hash"), max_length=64, editable=False)
    scope = models.CharField(_("scope"), max_length=8, choices=Scope, default=Scope.WRITE)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(
        _("last used"), null=True, blank=True, help_text=_("Updated at most once a minute.")
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
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

    client = models.CharField(_("client"), max_length=40)
    key = models.CharField(_("key"), max_length=255)
    fingerprint = models.CharField(_("fingerprint"), max_length=64)
    status_code = models.PositiveSmallIntegerField(_("status code"), null=True)
    response = models.JSONField(_("response"), null=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("API idempotency key")
        verbose_name_plural = _("API idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="api_idempotency_client_key"),
        ]

    def __str__(self) -> str:
        return f"{self.client}: {self.key}"


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
    bucket = models.PositiveSmallIntegerField(null=True, blank=True)
    n = models.BigIntegerField(default=0)
    segments = models.BigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)

    class Meta:
        verbose_name = _("dashboard count")
        verbose_name_plural = _("dashboard counts")

    def __str__(self) -> str:
        return f"{self.day}: {self.kind} {self.channel} {self.status} {self.bucket or ''} {self.n}"
