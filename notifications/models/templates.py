"""Templates: a message written once per channel and language."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from notifications.models.choices import LANGUAGE_CHOICES


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
    category = models.ForeignKey(
        "preferences.Category",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("category"),
        help_text=_("What notifications made from it are about; blank: the default category."),
    )
    digest_text_ru = models.TextField(
        _("digest text"),
        blank=True,
        db_default="",
        help_text=_(
            "When several notifications from this template are collected into one digest: "
            "its text, with {{ count }} and {% for item in items %}{{ item.message }}"
            "{% endfor %}. Blank: a plain list."
        ),
    )
    digest_text_en = models.TextField(_("digest text"), blank=True, db_default="")
    digest_key = models.CharField(
        _("digest key"),
        max_length=200,
        blank=True,
        db_default="",
        help_text=_(
            "Notifications made from it with this key are collected into one digest per "
            "user for the category's digest window (the category needs one); a key given "
            "when one is made wins. Blank: each is sent on its own."
        ),
    )
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

    def digest_text(self, language: str) -> str:
        return getattr(self, f"digest_text_{language}", "") or ""

    def languages(self) -> list[str]:
        """The languages this template is written in (every required part filled)."""
        return [
            code
            for code, _label in LANGUAGE_CHOICES
            if all(self.part(name, code).strip() for name in self.REQUIRED_PARTS)
        ]
