"""What each channel sends for a notification: its text, and for email a subject and HTML.

Senders ask ``content_for(notification, channel)`` instead of reading the message directly,
so a notification can carry a different form per channel: one made from a template keeps
what it was rendered to for each channel (``Notification.rendered``, written when it was
created), and that is what is sent; any other sends its ``message`` everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.utils import translation
from django.utils.translation import gettext

if TYPE_CHECKING:
    from notifications.models import Notification


@dataclass(frozen=True)
class Content:
    text: str
    subject: str = ""
    html: str = ""
    parse_mode: str = ""  # Telegram: "HTML" when the text uses Telegram's HTML subset


def default_subject(language: str = "") -> str:
    """``NOTIFY_EMAIL_SUBJECT``, else “Notification” in ``language`` (the recipient's), else in
    the service's (``DJANGO_LANGUAGE_CODE``), never in the operator's: the admin's preview
    shows what the consumer sends."""
    if settings.NOTIFY_EMAIL_SUBJECT:
        return settings.NOTIFY_EMAIL_SUBJECT
    with translation.override(language or settings.LANGUAGE_CODE):
        return gettext("Notification")


def recipient_language(notification: Notification) -> str:
    """The language a notification is for: the one its template was rendered in, else its
    user's contact's ("" when neither says). No query when the contact is loaded, as the
    consumer's claim and the admin's preview load it."""
    language = (notification.rendered or {}).get("language")
    if language:
        return str(language)
    try:
        return notification.user.contact.language or ""
    except ObjectDoesNotExist:
        return ""


def content_for(notification: Notification, channel: str) -> Content:
    """The content ``channel`` sends for ``notification``."""
    rendered = (notification.rendered or {}).get(channel)
    if isinstance(rendered, dict) and rendered.get("text"):
        if channel == "email":
            return Content(
                text=rendered["text"],
                subject=rendered.get("subject")
                or notification.subject
                or default_subject(recipient_language(notification)),
                html=rendered.get("html") or "",
            )
        return Content(text=rendered["text"], parse_mode=rendered.get("parse_mode") or "")
    if channel == "email":
        return Content(
            text=notification.message,
            subject=notification.subject or default_subject(recipient_language(notification)),
        )
    return Content(text=notification.message)
