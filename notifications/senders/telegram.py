"""Telegram: the Bot API's ``sendMessage``.

Classification (``classify_response``): 400 (chat not found, …) and 403 (blocked,
deactivated) are permanent for this recipient; 429 is rate limiting and carries
``retry_after``; 401/404 mean the bot token is wrong (a configuration error, shown as such);
5xx, timeouts and connection errors are transient. A 400 that carries
``parameters.migrate_to_chat_id`` (a group upgraded to a supergroup) stores the new chat id
on the contact and resends once.

Before each ``sendMessage`` the sender waits for a pacing slot (``notifications.ratelimit``):
NOTIFY_TELEGRAM_RATE messages/second over every consumer, NOTIFY_TELEGRAM_CHAT_RATE per chat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings

from notifications.ratelimit import telegram_pace
from notifications.senders.base import DeliveryError, SendResult, SkipChannel
from notifications.senders.http import http_session

if TYPE_CHECKING:
    from notifications.models import Notification, UserContact

MAX_MESSAGE_LENGTH = 4096


class ChatMigrated(Exception):
    """The group became a supergroup; the message must go to ``new_chat_id``."""

    def __init__(self, new_chat_id: str) -> None:
        super().__init__(new_chat_id)
        self.new_chat_id = new_chat_id


def split_text(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """``text`` cut into parts of at most ``limit`` characters, nothing lost.

    Cuts fall on the last line break in a part, else on the last space, else mid-word.
    """
    parts: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = window.rfind("\n")
        if cut < limit // 2:
            cut = window.rfind(" ")
        if cut < limit // 2:
            parts.append(window)
            text = text[limit:]
        else:
            parts.append(text[:cut])
            text = text[cut + 1 :]  # the separator itself is where the message splits
    parts.append(text)
    return parts


def classify_response(status_code: int, payload: dict[str, Any]) -> None:
    """Raise the ``DeliveryError`` (or ``ChatMigrated``) a Bot API answer means; return on ok."""
    if 200 <= status_code < 300 and payload.get("ok"):
        return
    description = str(payload.get("description") or f"HTTP {status_code}")
    parameters = payload.get("parameters") or {}
    error_code = int(payload.get("error_code") or status_code)
    summary = f"Telegram {error_code}: {description}"
    if error_code == 400 and parameters.get("migrate_to_chat_id"):
        raise ChatMigrated(str(parameters["migrate_to_chat_id"]))
    if error_code == 429:
        retry_after = float(parameters.get("retry_after") or 1)
        raise DeliveryError(summary, retry_after=retry_after)
    if error_code in (401, 404):
        raise DeliveryError(
            f"configuration error: Telegram rejected the bot token ({summary}); "
            "check TELEGRAM_BOT_TOKEN"
        )
    if error_code in (400, 403):
        raise DeliveryError(summary, permanent=True)
    raise DeliveryError(summary)


class TelegramSender:
    channel = "telegram"
    transport = "telegram"

    def is_configured(self) -> bool:
        return bool(settings.TELEGRAM_BOT_TOKEN)

    def recipient(self, contact: UserContact) -> str:
        if not contact.telegram_chat_id:
            raise SkipChannel("no Telegram chat id")
        return contact.telegram_chat_id

    def _call(self, method: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST one Bot API method; returns its ``result``; raises ``DeliveryError``."""
        url = f"{settings.TELEGRAM_API_URL}/bot{settings.TELEGRAM_BOT_TOKEN}/{method}"
        try:
            response = http_session().post(
                url, json=data or {}, timeout=settings.NOTIFY_HTTP_TIMEOUT
            )
        except requests.Timeout as err:
            raise DeliveryError(f"Telegram did not answer in time: {err}") from err
        except requests.RequestException as err:
            raise DeliveryError(f"Telegram unreachable: {err}") from err
        try:
            payload = response.json()
        except ValueError:
            payload = {"description": f"HTTP {response.status_code}, not a Bot API answer"}
        if not isinstance(payload, dict):
            payload = {"description": f"HTTP {response.status_code}, unexpected answer"}
        classify_response(response.status_code, payload)
        return payload.get("result") or {}

    def _send_parts(self, chat_id: str, text: str) -> list[str]:
        ids = []
        for part in split_text(text):
            telegram_pace(chat_id)  # NOTIFY_TELEGRAM_RATE overall, 1/s per chat
            result = self._call("sendMessage", {"chat_id": chat_id, "text": part})
            ids.append(str(result.get("message_id", "")))
        return ids

    def send(self, contact: UserContact, notification: Notification) -> SendResult:
        chat_id = self.recipient(contact)
        try:
            ids = self._send_parts(chat_id, notification.message)
        except ChatMigrated as migrated:
            type(contact).objects.filter(pk=contact.pk).update(
                telegram_chat_id=migrated.new_chat_id
            )
            contact.telegram_chat_id = migrated.new_chat_id
            try:
                ids = self._send_parts(migrated.new_chat_id, notification.message)
            except ChatMigrated as again:
                raise DeliveryError(
                    f"Telegram chat migrated twice (to {again.new_chat_id})", permanent=True
                ) from None
        return SendResult(provider_message_id=",".join(ids))

    def check(self) -> str:
        me = self._call("getMe")
        return f"bot @{me.get('username', '?')} answers"
