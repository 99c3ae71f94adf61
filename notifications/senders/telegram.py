"""Telegram: the Bot API's ``sendMessage``.

Classification (``classify``): 400 (chat not found, …) and 403 (blocked, deactivated) are
permanent for this recipient; 429 is rate limiting and carries ``retry_after``; 401/404 mean
the bot token is wrong (a configuration error); 5xx is transient; a read timeout is
ambiguous. A 400 that carries ``parameters.migrate_to_chat_id`` (a group upgraded to a
supergroup) stores the new chat id on the contact and sends the part there. A 409 (a webhook
is set while polling, or another poller took over) is ``Conflict``.

A contact marked "bot blocked" (the user blocked the bot: a ``my_chat_member`` update, or a
403 "blocked by the user" at send time, see ``on_permanent``) is skipped without a call.

Text longer than 4,096 characters (counted in UTF-16 units, as Telegram does) is split into
parts at line breaks, else spaces, never producing a blank part. Each part holds two pacing
slots first (``notifications.pacing``): one of its chat (NOTIFY_TELEGRAM_CHAT_RATE) and one of
the bot (NOTIFY_TELEGRAM_RATE), shared by every consumer.

Paid broadcast (``notifications.broadcast``): a message of a campaign that has it reserves
its Stars (0.1 a part: each part is a message Telegram charges) when its part's paces are
asked for, once per part. With the Stars taken, the part holds the paid pace
(``PAID_PACE``, NOTIFY_TELEGRAM_PAID_RATE) instead of the bot's and goes out with
``allow_paid_broadcast``; with a budget used up, it goes out unflagged at the free pace. The
Stars come back when Telegram surely did not take the part (any answer but a timeout or a
dropped connection), or when the round ends before it was sent (``give_back``); a 429 to a
flagged part pushes back the paid pace, not the free traffic's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import InterfaceError, OperationalError

from notifications.broadcast import services as broadcast
from notifications.content import content_for
from notifications.operations import metrics
from notifications.senders import http
from notifications.senders.base import (
    ConfigurationError,
    DeliveryError,
    Pace,
    PartResult,
    Prepared,
    Sender,
    SkipChannel,
)

if TYPE_CHECKING:
    from notifications.models import Notification, UserContact

MAX_MESSAGE_LENGTH = 4096
# The pacing schedule of the bot: every message books a slot of it (NOTIFY_TELEGRAM_RATE),
# and a 429 pushes it back by its retry_after (``notifications.pacing.push_back``).
BOT_PACE = "telegram"
# The schedule of the bot's flagged messages (paid broadcast, NOTIFY_TELEGRAM_PAID_RATE): they
# book it instead of BOT_PACE, and a 429 to one of them pushes it back.
PAID_PACE = "telegram:paid"

logger = logging.getLogger(__name__)


class Conflict(DeliveryError):
    """Telegram 409: getUpdates while a webhook is set, or another getUpdates took over."""


def blocked_by_user(error: DeliveryError) -> bool:
    """True when ``error`` is Telegram's 403 for a user who blocked the bot."""
    return error.message.startswith("Telegram 403") and "blocked by the user" in error.message


class ChatMigrated(Exception):
    """The group became a supergroup; the message must go to ``new_chat_id``."""

    def __init__(self, new_chat_id: str) -> None:
        super().__init__(new_chat_id)
        self.new_chat_id = new_chat_id


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _fit(text: str, limit: int) -> int:
    """How many characters of ``text`` fit in ``limit`` UTF-16 units (never half a pair)."""
    if len(text) <= limit // 2 or _utf16_length(text[:limit]) <= limit:
        return min(len(text), limit)
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def split_text(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """``text`` cut into parts of at most ``limit`` UTF-16 units, losing nothing but the
    whitespace at a cut; no part is blank (the Bot API refuses an empty text).

    Cuts fall on the last line break in a part, else on the last space, else mid-word (but
    never inside a surrogate pair).
    """
    parts: list[str] = []
    while _utf16_length(text) > limit:
        size = _fit(text, limit)
        window = text[:size]
        cut = window.rfind("\n")
        if cut < size // 2:
            cut = window.rfind(" ")
        if cut < size // 2:
            part, text = window, text[size:]
        else:
            part, text = text[:cut], text[cut + 1 :]  # the separator is where it splits
        if part.strip():
            parts.append(part)
    if text.strip():
        parts.append(text)
    return parts


def classify(answer: http.HttpAnswer) -> Any:
    """The ``result`` of a successful Bot API answer (an object, or getUpdates' list; ``{}``
    for anything else); raises what a failed one means."""
    payload = answer.payload
    if 200 <= answer.status_code < 300 and payload.get("ok"):
        result = payload.get("result")
        return result if isinstance(result, (dict, list)) else {}
    description = str(
        payload.get("description") or payload.get("_not_json") or f"HTTP {answer.status_code}"
    )
    parameters = payload.get("parameters") or {}
    try:
        error_code = int(payload.get("error_code") or answer.status_code)
    except (TypeError, ValueError):
        error_code = answer.status_code
    summary = f"Telegram {error_code}: {description}"
    if error_code == 400 and isinstance(parameters, dict) and parameters.get("migrate_to_chat_id"):
        raise ChatMigrated(str(parameters["migrate_to_chat_id"]))
    if error_code == 429:
        metrics.rate_limited("telegram")
        try:
            retry_after = float(parameters.get("retry_after") or 1)
        except (TypeError, ValueError, AttributeError):
            retry_after = 1.0
        # Telegram's flood control is the bot's, not the chat's: the whole bot waits.
        raise DeliveryError(summary, retry_after=max(retry_after, 0.1), pause=BOT_PACE)
    if error_code == 409:
        raise Conflict(summary)
    if error_code in (401, 404):
        raise ConfigurationError(
            f"Telegram rejected the bot token ({summary}); check TELEGRAM_BOT_TOKEN"
        )
    if error_code in (400, 403):
        raise DeliveryError(summary, permanent=True)
    raise DeliveryError(summary)


class TelegramSender(Sender):
    channel = "telegram"
    transport = "telegram"
    required_settings = ("TELEGRAM_BOT_TOKEN",)

    def address(self, contact: UserContact) -> str:
        if not contact.telegram_chat_id:
            raise SkipChannel("no Telegram chat id")
        if contact.telegram_blocked:
            raise SkipChannel("the user blocked the bot")
        return contact.telegram_chat_id

    def call(
        self, method: str, data: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """POST one Bot API method; returns its ``result`` (``timeout``: seconds to wait for
        the answer, default NOTIFY_HTTP_TIMEOUT); raises ``DeliveryError``."""
        return http.call(
            f"{settings.TELEGRAM_API_URL}/bot{settings.TELEGRAM_BOT_TOKEN}/{method}",
            provider="Telegram",
            describe_url=method,
            timeout=timeout or settings.NOTIFY_HTTP_TIMEOUT,
            json=data,
            classify=classify,
        )

    def on_permanent(self, contact: UserContact, error: DeliveryError) -> None:
        """A 403 "blocked by the user" marks the contact, so later sends skip Telegram."""
        if blocked_by_user(error) and contact.pk is not None:
            type(contact).objects.filter(pk=contact.pk).update(telegram_blocked=True)
            contact.telegram_blocked = True

    def prepare(self, notification: Notification, contact: UserContact) -> Prepared:
        content = content_for(notification, self.channel)
        parts = split_text(content.text)
        if not parts:
            raise DeliveryError("the message is blank for Telegram", permanent=True)
        extra: dict[str, Any] = {"contact": contact}
        if content.parse_mode:
            extra["parse_mode"] = content.parse_mode
        if notification.campaign_id is not None and self._paid(notification.campaign_id):
            extra["paid_campaign"] = notification.campaign_id
            extra["stars"] = {}  # part index → its Reservation, or None: sent unflagged
        return Prepared(address=self.address(contact), parts=parts, extra=extra)

    def _paid(self, campaign_id: int) -> bool:
        try:
            return broadcast.is_paid(campaign_id)
        except (OperationalError, InterfaceError) as err:
            logger.warning("paid broadcast of campaign %s not read (%s): free", campaign_id, err)
            return False

    def _reservation(self, prepared: Prepared, index: int) -> broadcast.Reservation | None:
        """The Stars of part ``index`` of a paid campaign's message, reserved the first time
        they are asked for; None: not paid, or a budget is used up (sent unflagged)."""
        if "paid_campaign" not in prepared.extra:
            return None
        reserved = prepared.extra["stars"]
        if index not in reserved:
            try:
                reserved[index] = broadcast.reserve(prepared.extra["paid_campaign"])
            except (OperationalError, InterfaceError) as err:
                logger.warning("Stars not reserved (%s): sent unflagged", err)
                reserved[index] = None
        return reserved[index]

    def paces(self, prepared: Prepared, index: int) -> list[Pace]:
        chat = Pace(f"telegram:chat:{prepared.address}", settings.NOTIFY_TELEGRAM_CHAT_RATE)
        if self._reservation(prepared, index) is not None:
            return [chat, Pace(PAID_PACE, settings.NOTIFY_TELEGRAM_PAID_RATE)]
        return [chat, Pace(BOT_PACE, settings.NOTIFY_TELEGRAM_RATE)]

    def give_back(self, prepared: Prepared) -> None:
        """The Stars reserved for parts the round ended before sending go back."""
        reserved = prepared.extra.get("stars") or {}
        for index, reservation in list(reserved.items()):
            if reservation is not None:
                broadcast.give_back(reservation)
            del reserved[index]

    def _send(self, prepared: Prepared, chat_id: str, text: str, *, paid: bool) -> dict[str, Any]:
        data: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if prepared.extra.get("parse_mode"):
            data["parse_mode"] = prepared.extra["parse_mode"]
        if paid:
            data["allow_paid_broadcast"] = True
        try:
            return self.call("sendMessage", data)
        except DeliveryError as err:
            if paid and err.pause == BOT_PACE:
                err.pause = PAID_PACE  # the flagged sends' schedule waits, not the free one
            raise

    def send_part(self, prepared: Prepared, index: int) -> PartResult:
        """Send part ``index``; its Stars, if reserved, are spent once Telegram took it or
        may have (an ambiguous outcome), and given back otherwise. Raises ``DeliveryError``."""
        reservation = (prepared.extra.get("stars") or {}).pop(index, None)
        try:
            result = self._send_to_chat(prepared, index, paid=reservation is not None)
        except DeliveryError as err:
            if reservation is not None and not err.ambiguous:
                self._give_back_stars(reservation)
                reservation = None
            raise
        finally:
            if reservation is not None:  # Telegram took it, or may have: spent
                metrics.telegram_stars(reservation.stars)
        return PartResult(provider_message_id=str(result.get("message_id", "")))

    def _give_back_stars(self, reservation: broadcast.Reservation) -> None:
        try:
            broadcast.give_back(reservation)
        except (OperationalError, InterfaceError) as err:  # counted as spent: never under
            logger.warning("Stars of a refused message not given back (%s)", err)

    def _send_to_chat(self, prepared: Prepared, index: int, *, paid: bool) -> dict[str, Any]:
        """Send part ``index`` to the contact's chat, following a migration to a supergroup."""
        text = prepared.parts[index]
        try:
            return self._send(prepared, prepared.address, text, paid=paid)
        except ChatMigrated as migrated:
            contact = prepared.extra["contact"]
            type(contact).objects.filter(pk=contact.pk).update(
                telegram_chat_id=migrated.new_chat_id
            )
            contact.telegram_chat_id = migrated.new_chat_id
            prepared.address = migrated.new_chat_id
            try:
                return self._send(prepared, migrated.new_chat_id, text, paid=paid)
            except ChatMigrated as again:
                raise DeliveryError(
                    f"Telegram chat migrated twice (to {again.new_chat_id})", permanent=True
                ) from None

    def check(self) -> str:
        me = self.call("getMe")
        return f"bot @{me.get('username', '?')} answers"
