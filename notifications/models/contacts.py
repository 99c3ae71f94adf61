"""How to reach a user: their contact, and the Telegram links, updates and poll offsets
that tie a Telegram chat to it."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from notifications.models.choices import LANGUAGE_CHOICES
from notifications.preferences.quiet_hours import validate_window, validate_zone
from notifications.validators import normalize_phone, validate_phone, validate_telegram_chat_id


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
    timezone = models.CharField(
        _("time zone"),
        max_length=64,
        blank=True,
        db_default="",
        validators=[validate_zone],
        help_text=_(
            "The user's IANA time zone, e.g. Europe/Berlin: quiet hours and local-time "
            "campaigns follow it. Blank: the service's (TIME_ZONE)."
        ),
    )
    quiet_hours = models.CharField(
        _("quiet hours"),
        max_length=16,
        blank=True,
        db_default="",
        validators=[validate_window],
        help_text=_(
            "E.g. 22:00-08:00 in the user's time zone: notifications that are not required "
            "wait until they end. Blank: the service's (NOTIFY_QUIET_HOURS); “off”: none."
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
