"""What each channel sends for a notification: its text, and for email a subject and HTML.

Senders ask ``content_for(notification, channel)`` instead of reading the message directly,
so a notification can carry a different form per channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from notifications.models import Notification


@dataclass(frozen=True)
class Content:
    text: str
    subject: str = ""
    html: str = ""
    parse_mode: str = ""  # Telegram: "HTML" when the text uses Telegram's HTML subset


def content_for(notification: Notification, channel: str) -> Content:
    """The content ``channel`` sends for ``notification``."""
    if channel == "email":
        return Content(
            text=notification.message,
            subject=notification.subject or settings.NOTIFY_EMAIL_SUBJECT,
        )
    return Content(text=notification.message)
