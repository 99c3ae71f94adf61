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
    "sms": (
        "notifications.senders.sms_api.SmsAeroApiSender",
        "notifications.senders.sms_smtp.SmsAeroSmtpSender",
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
            f"NOTIFY_CHANNEL_ORDER names {channel!r}; known channels: {', '.join(CHANNEL_SENDERS)}"
        ) from None
    if channel == "sms":
        paths = _sms_transport_paths()
    return [_load(path) for path in paths]


def _sms_transport_paths() -> tuple[str, ...]:
    """The SMS senders named by ``NOTIFY_SMS_TRANSPORTS``, in its order (read at call time)."""
    names = list(settings.NOTIFY_SMS_TRANSPORTS)
    unknown = [name for name in names if name not in SMS_TRANSPORTS]
    if unknown:
        raise ImproperlyConfigured(
            f"NOTIFY_SMS_TRANSPORTS names {', '.join(map(repr, unknown))}; "
            f"known transports: {', '.join(SMS_TRANSPORTS)}"
        )
    return tuple(SMS_TRANSPORTS[name] for name in dict.fromkeys(names))


def channel_closed_reason(channel: str) -> str:
    """Why ``channel`` can't be used for anyone right now ("" when it can).

    The SMS channel closes for the day when ``NOTIFY_SMS_DAILY_LIMIT`` is reached.
    """
    if channel == "sms":
        from notifications.senders.sms import daily_limit_reason

        return daily_limit_reason()
    return ""


def channel_order() -> list[str]:
    """``NOTIFY_CHANNEL_ORDER`` with unknown names refused."""
    order = list(settings.NOTIFY_CHANNEL_ORDER)
    for channel in order:
        senders_for(channel)
    return order
