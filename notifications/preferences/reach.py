"""Which channels can't reach a user whatever their preferences say, and why, in words for
the user: shown on their preference page and under the bot's ``/settings``, so that a ticked
channel that can't deliver is not a silent promise."""

from __future__ import annotations

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from notifications.models import Channel, UserContact

NO_ADDRESS: dict[str, Promise] = {
    "telegram": _("Telegram: not connected, so nothing comes there."),
    "email": _("Email: we have no address for you, so nothing comes by email."),
    "sms": _("SMS: we have no number for you, so nothing comes by SMS."),
}
BLOCKED = _("Telegram: the bot is blocked, so nothing comes there.")
OPTED_OUT: dict[str, Promise] = {
    "telegram": _("Telegram: stopped with /stop; send /start to the bot to resume."),
    "email": _("Email: turned off for every topic."),
    "sms": _("SMS: turned off for every topic."),
}


def _address(contact: UserContact, channel: str) -> str:
    """``contact``'s address on ``channel`` ("" when there is none)."""
    if channel == Channel.TELEGRAM:
        return contact.telegram_chat_id
    if channel == Channel.EMAIL:
        return contact.effective_email
    return contact.phone


def unreachable(contact: UserContact) -> dict[str, Promise]:
    """Channel → why nothing reaches ``contact`` there (lazy text), for each channel that
    can't; the channels of ``settings.CHANNELS`` in their order."""
    reasons: dict[str, Promise] = {}
    for channel in settings.CHANNELS:
        if not _address(contact, channel):
            reasons[channel] = NO_ADDRESS[channel]
        elif channel == Channel.TELEGRAM and contact.telegram_blocked:
            reasons[channel] = BLOCKED
        elif getattr(contact, f"{channel}_opt_out", False):
            reasons[channel] = OPTED_OUT[channel]
    return reasons
