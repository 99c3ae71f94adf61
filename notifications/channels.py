"""The one place that maps a channel name to its senders (transports), in order."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from notifications.senders.base import Sender

# channel -> dotted paths of its senders, tried in this order.
CHANNEL_SENDERS: dict[str, tuple[str, ...]] = {
    "telegram": ("notifications.senders.telegram.TelegramSender",),
    "email": ("notifications.senders.email.EmailSender",),
    "sms": (),  # its transports arrive with the SMS issue; until then it is "not configured"
}


@cache
def _load(path: str) -> Sender:
    return import_string(path)()


def senders_for(channel: str) -> list[Sender]:
    """The senders of ``channel`` in the order they are tried."""
    try:
        paths = CHANNEL_SENDERS[channel]
    except KeyError:
        raise ImproperlyConfigured(
            f"NOTIFY_CHANNEL_ORDER names {channel!r}; known channels: {', '.join(CHANNEL_SENDERS)}"
        ) from None
    return [_load(path) for path in paths]


def channel_order() -> list[str]:
    """``NOTIFY_CHANNEL_ORDER`` with unknown names refused."""
    order = list(settings.NOTIFY_CHANNEL_ORDER)
    for channel in order:
        senders_for(channel)
    return order
