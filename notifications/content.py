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
from django.utils.translation import gettext

if TYPE_CHECKING:
    from notifications.models import Notification


@dataclass(frozen=True)
class Content:
    text: str
    subject: str = ""
    html: str = ""
    parse_mode: str = ""  # Telegram: "HTML" when the text uses Telegram's HTML subset


def default_subject() -> str:
    """``NOTIFY_EMAIL_SUBJECT``, else “Notification” in the active language (the consumer's
    is ``DJANGO_LANGUAGE_CODE``)."""
    return settings.NOTIFY_EMAIL_SUBJECT or gettext("Notification")


def content_for(notification: Notification, channel: str) -> Content:
    """The content ``channel`` sends for ``notification``."""
    rendered = (notification.rendered or {}).get(channel)
    if isinstance(rendered, dict) and rendered.get("text"):
        if channel == "email":
            return Content(
                text=rendered["text"],
                subject=rendered.get("subject") or notification.subject or default_subject(),
                html=rendered.get("html") or "",
            )
        return Content(text=rendered["text"], parse_mode=rendered.get("parse_mode") or "")
    if channel == "email":
        return Content(
            text=notification.message,
            subject=notification.subject or default_subject(),
        )
    return Content(text=notification.message)
