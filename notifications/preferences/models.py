"""Categories, each user's choices per category and channel, and the counts that enforce
frequency caps."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from notifications.models import Channel

# The longest a digest may collect items.
DIGEST_WINDOW_MAX = timedelta(days=1)
# The longest a cap may count over.
CAP_WINDOW_MAX = timedelta(days=31)


class Category(models.Model):
    """A topic of notifications (login codes, order updates, promotions): what users choose
    to get or not, and the rules of its sending."""

    class OverCap(models.TextChoices):
        DEFER = "defer", _("wait until the cap allows")
        SKIP = "skip", _("skip it, with the reason")

    key = models.SlugField(
        _("key"),
        max_length=50,
        unique=True,
        help_text=_("How code and the API name it, e.g. promotions."),
    )
    name_en = models.CharField(_("name (English)"), max_length=100)
    name_ru = models.CharField(_("name (Russian)"), max_length=100, blank=True)
    description_en = models.TextField(
        _("description (English)"),
        blank=True,
        help_text=_("What users get in it, in words they understand (shown on their page)."),
    )
    description_ru = models.TextField(_("description (Russian)"), blank=True)
    required = models.BooleanField(
        _("required"),
        default=False,
        help_text=_(
            "Transactional (login codes, receipts, security): sent whatever the user's "
            "preferences, quiet hours and caps say, and not shown as a choice."
        ),
    )
    opt_in = models.BooleanField(
        _("opt-in"),
        default=False,
        help_text=_(
            "New users start with it off and must turn it on (consent, for marketing); "
            "otherwise they start with it on and may turn it off."
        ),
    )
    default_channels = models.JSONField(
        _("default channels"),
        default=list,
        blank=True,
        help_text=_(
            "The channels a user starts with for it (telegram, email, sms); empty: every channel."
        ),
    )
    cap_count = models.PositiveIntegerField(
        _("at most"),
        null=True,
        blank=True,
        help_text=_("Notifications per user per cap window; blank: no cap."),
    )
    cap_window = models.DurationField(
        _("cap window"), null=True, blank=True, help_text=_("E.g. 1 day, or 01:00:00.")
    )
    over_cap = models.CharField(
        _("over the cap"), max_length=8, choices=OverCap, default=OverCap.DEFER
    )
    digest_window = models.DurationField(
        _("digest window"),
        null=True,
        blank=True,
        help_text=_(
            "Notifications with a digest key are collected for this long from the first "
            "one, then sent as one message (at most a day); blank: no digests."
        ),
    )
    is_default = models.BooleanField(
        _("default"),
        default=False,
        help_text=_("The category of notifications that name none (one category at most)."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["-required", "name_en"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_category"
            ),
        ]

    def __str__(self) -> str:
        return self.name_en

    def name(self, language: str | None) -> str:
        """The name in ``language`` (ru or en), the English one when there is none."""
        return (self.name_ru if language == "ru" else "") or self.name_en

    def description(self, language: str | None) -> str:
        return (self.description_ru if language == "ru" else "") or self.description_en

    def channel_default(self, channel: str) -> bool:
        """Whether a user who chose nothing gets ``channel`` for it."""
        if self.opt_in:
            return False
        return not self.default_channels or channel in self.default_channels

    def clean(self) -> None:
        errors: dict[str, str] = {}
        unknown = [c for c in self.default_channels or [] if c not in Channel.values]
        if not isinstance(self.default_channels, list) or unknown:
            errors["default_channels"] = _(
                "Give a list of channels from telegram, email and sms; unknown: %(names)s."
            ) % {"names": ", ".join(map(str, unknown)) or str(self.default_channels)}
        if self.cap_count is not None and self.cap_count < 1:
            errors["cap_count"] = _("A cap is at least 1 notification; leave it blank for none.")
        if (self.cap_count is None) != (self.cap_window is None):
            errors["cap_window"] = _("Give both the cap and its window, or neither.")
        elif self.cap_window is not None and not (timedelta(0) < self.cap_window <= CAP_WINDOW_MAX):
            errors["cap_window"] = _("A cap window is longer than nothing and at most 31 days.")
        if self.digest_window is not None and not (
            timedelta(0) < self.digest_window <= DIGEST_WINDOW_MAX
        ):
            errors["digest_window"] = _("A digest window is longer than nothing and at most a day.")
        if self.required and self.opt_in:
            errors["opt_in"] = _("A required category can't be opt-in: users don't choose it.")
        if errors:
            raise ValidationError(errors)


class Preference(models.Model):
    """One user's choice for one category on one channel (no row: the category's default)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_preferences",
        verbose_name=_("user"),
    )
    category = models.ForeignKey(
        Category, on_delete=models.CASCADE, related_name="preferences", verbose_name=_("category")
    )
    channel = models.CharField(_("channel"), max_length=16, choices=Channel)
    enabled = models.BooleanField(_("on"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("preference")
        verbose_name_plural = _("preferences")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "category", "channel"], name="one_preference_per_channel"
            ),
        ]

    def __str__(self) -> str:
        state = _("on") if self.enabled else _("off")
        return f"{self.user}: {self.category} / {self.get_channel_display()} {state}"


class CapCount(models.Model):
    """How many notifications of a capped category one user was sent (or is being sent) in
    one window: a slot is taken with one conditional UPDATE before sending and given back if
    nothing was sent, so a cap holds across every worker and host."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "category", "window_start"], name="one_cap_count_per_window"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}/{self.category_id} from {self.window_start}: {self.count}"
