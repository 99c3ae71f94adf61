"""The one place that maps a channel name to its senders (transports), in order."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from notifications.senders.base import Sender
from notifications.senders.sms import daily_limit_reason

# channel -> dotted paths of its senders, tried in this order.
CHANNEL_SENDERS: dict[str, tuple[str, ...]] = {
    "telegram": ("notifications.senders.telegram.TelegramSender",),
    "email": ("notifications.senders.email.EmailSender",),
    "sms": (
        "notifications.senders.sms_api.SmsAeroApiSender",
        "notifications.senders.sms_smtp.SmsSmtpSender",
        "notifications.senders.sms_smpp.SmppSender",
    ),
}

# Short names of the SMS transports for ``NOTIFY_SMS_TRANSPORTS``, which picks and orders them.
SMS_TRANSPORTS: dict[str, str] = dict(
    zip(("api", "smtp", "smpp"), CHANNEL_SENDERS["sms"], strict=True)
)


@cache
def _load(path: str) -> Sender:
    return import_string(path)()


def senders_for(channel: str) -> list[Sender]:
    """The senders of ``channel`` in the order they are tried."""
    try:
        paths = CHANNEL_SENDERS[channel]
    except KeyError:
        raise ImproperlyConfigured(
            f"unknown channel {channel!r}; known channels: {', '.join(CHANNEL_SENDERS)}"
        ) from None
    if channel == "sms":
        paths = tuple(
            SMS_TRANSPORTS[name] for name in dict.fromkeys(settings.NOTIFY_SMS_TRANSPORTS)
        )
    return [_load(path) for path in paths]


def all_senders() -> list[Sender]:
    """Every sender of every channel (for shutdown and checks)."""
    return [_load(path) for paths in CHANNEL_SENDERS.values() for path in paths]


def channel_closed_reason(channel: str) -> str:
    """Why ``channel`` can't be used for anyone right now ("" when it can).

    The SMS channel closes for the day when ``NOTIFY_SMS_DAILY_LIMIT`` is reached.
    """
    return daily_limit_reason() if channel == "sms" else ""


def channel_order(requested: list[str] | None = None) -> list[str]:
    """The chain for one notification: ``requested`` (a subset, in its order) or
    ``NOTIFY_CHANNEL_ORDER``."""
    return list(requested) if requested else list(settings.NOTIFY_CHANNEL_ORDER)
