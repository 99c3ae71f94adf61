"""Choices shared by the models of several modules (and by other apps' models)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    TELEGRAM = "telegram", _("Telegram")
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")


# The languages templates are written in (and a contact may ask for).
LANGUAGE_CHOICES = [("ru", _("Russian")), ("en", _("English"))]
