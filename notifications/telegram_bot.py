"""The bot's side of Telegram: invite links, the updates users send, and what it answers.

**Links.** A contact's invite link is ``https://t.me/<bot>?start=<token>``. A token is 43
characters of ``A–Z a–z 0–9 _ -`` (an HMAC-SHA256, keyed with SECRET_KEY, of a random
32-byte nonce), works once, and expires after ``NOTIFY_TELEGRAM_INVITE_TTL``. The database
keeps the token's SHA-256 (to find it) and the nonce (to show the same link on the contact's
page again), never the token: a copy of the database alone reveals no live link. Using a link
revokes the contact's other links. The bot's username comes from TELEGRAM_BOT_USERNAME, else
from ``getMe``, cached for a day.

**Updates** (``process_update``), from the webhook view or ``manage.py telegram_poll``, are
handled once per ``update_id`` (a replay changes nothing and gets no second reply):

- ``/start <token>``: a valid token links the chat to the token's contact (moving it from
  any other contact), clears the Telegram opt-out and the bot-blocked mark; an expired, used
  or unknown token links nothing and gets a helpful reply;
- ``/start`` alone: how to get linked; in a chat that is linked already, notifications
  resume (the opt-out is cleared). Nothing about other users is said;
- ``/stop``: the Telegram opt-out, confirmed;
- ``/settings``, and the buttons of its message (``callback_query``): topics turned on or off
  per channel, by ``notifications.preferences.bot``;
- ``my_chat_member`` ``kicked`` (the user blocked the bot) or ``left`` (removed from a
  group): the contact is marked "bot blocked" and delivery skips Telegram; ``member`` clears
  the mark.

Replies go out with ``sendMessage`` through the Telegram sender's HTTP path once the update's
changes are committed, in the user's language, never the operator's: Russian or English by
their Telegram ``language_code``, else the linked contact's language, else the service's
(DJANGO_LANGUAGE_CODE). The invite texts (email or SMS) are here too. Every text is written in
English and translated by the catalogue (locale/ru).
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from notifications.invite_tokens import MASK, token_for, token_hash
from notifications.models import TelegramLink, TelegramPollOffset, TelegramUpdate, UserContact
from notifications.preferences import bot as preference_bot
from notifications.rendering import default_language
from notifications.senders.base import DeliveryError
from notifications.senders.telegram import TelegramSender

logger = logging.getLogger(__name__)

TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# What the bot asks Telegram for (setWebhook and getUpdates).
ALLOWED_UPDATES = ["message", "my_chat_member", "callback_query"]
USERNAME_CACHE_SECONDS = 86_400
# Handled update ids are kept this long (Telegram keeps an undelivered update for 24 hours).
UPDATES_KEPT = timedelta(days=7)
# Used and expired links are kept this long after they stop working, for the record.
LINKS_KEPT = timedelta(days=30)
LANGUAGES = ("en", "ru")

# What the bot says, and the invite it sends, written in English; the Russian is in the
# catalogue (locale/ru). ``text()`` gives one in the recipient's language, never the
# operator's.
TEXTS: dict[str, Promise] = {
    "linked": _(
        "Done: this chat is linked. Notifications will come here. Send /stop to stop them."
    ),
    "already_linked": _(
        "This chat is already linked; notifications come here. Send /stop to stop them."
    ),
    "resumed": _("Notifications will come here again. Send /stop to stop them."),
    "expired": _("This link has expired. Ask for a new one, then open it again."),
    "used": _(
        "This link has been used already; each link works once. Ask for a new one if you need "
        "to link another chat."
    ),
    "unknown": _(
        "This link is not valid. Open the link exactly as you received it, or ask for a new one."
    ),
    "how_to_link": _(
        "Hello! This bot sends notifications. To get yours here, open the personal link you "
        "received (by email or SMS, or as a QR code) and press Start."
    ),
    "stopped": _("Notifications will no longer come here. Send /start to get them again."),
    "not_linked": _("This chat is not linked, so there is nothing to stop."),
    "invite_subject": _("Get your notifications in Telegram"),
    # One SMS (160 GSM characters) with a bot name of up to 15 characters.
    "invite": _(
        "Telegram notifications: open %(url)s and press Start. One-time link, until %(date)s."
    ),
}


def language(code: str | None) -> str:
    """``ru`` for a Russian ``language_code`` (ru, ru-RU), else ``en``."""
    return "ru" if (code or "").lower().replace("_", "-").split("-")[0] == "ru" else "en"


def text(key: str, lang: str | None, **values: Any) -> str:
    """The bot's text ``key`` in ``lang`` (a ``language_code`` or ru/en), whatever language
    is active; raises ``KeyError`` for an unknown key."""
    with translation.override(language(lang)):
        message = str(TEXTS[key])
    return message % values if values else message


# --- the bot ------------------------------------------------------------------------------------


def bot_id() -> int:
    """The bot's numeric id (the token's first part); raises ``DeliveryError`` when Telegram
    is not configured."""
    head = settings.TELEGRAM_BOT_TOKEN.split(":", 1)[0]
    if not head.isdigit():
        raise DeliveryError("Telegram is not configured (TELEGRAM_BOT_TOKEN)")
    return int(head)


def bot_username() -> str:
    """TELEGRAM_BOT_USERNAME, else the username ``getMe`` reports (cached for a day).

    Raises ``DeliveryError`` when Telegram is not configured or does not answer.
    """
    if settings.TELEGRAM_BOT_USERNAME:
        return settings.TELEGRAM_BOT_USERNAME
    key = f"telegram:username:{bot_id()}"
    username = cache.get(key)
    if not username:
        me = TelegramSender().call("getMe")
        username = str(me.get("username") or "") if isinstance(me, dict) else ""
        if not username:
            raise DeliveryError("Telegram's getMe named no username for the bot")
        cache.set(key, username, USERNAME_CACHE_SECONDS)
    return username


# --- links --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invite:
    """A contact's link: its URL and until when it works."""

    url: str
    token: str
    expires_at: datetime


def _invite(token: str, expires_at: datetime, username: str) -> Invite:
    return Invite(f"https://t.me/{username}?start={token}", token, expires_at)


def make_link(
    contact: UserContact, kind: str, username: str, now: datetime | None = None
) -> tuple[TelegramLink, Invite]:
    """A new link for ``contact`` (``TelegramLink.Kind``): its row, unsaved, and the invite
    (whose token is not in the row)."""
    now = now or timezone.now()
    nonce = secrets.token_urlsafe(32)
    token = token_for(nonce)
    expires_at = now + timedelta(seconds=settings.NOTIFY_TELEGRAM_INVITE_TTL)
    row = TelegramLink(
        contact=contact,
        kind=kind,
        token_hash=token_hash(token),
        nonce=nonce,
        expires_at=expires_at,
    )
    return row, _invite(token, expires_at, username)


def page_link(contact: UserContact, now: datetime | None = None) -> Invite:
    """The link shown on the contact's page: the same one while it is unused and has more
    than half its lifetime left, else a new one. Raises ``DeliveryError`` (the bot's
    username could not be found)."""
    username = bot_username()
    now = now or timezone.now()
    fresh_after = now + timedelta(seconds=settings.NOTIFY_TELEGRAM_INVITE_TTL / 2)
    current = (
        TelegramLink.objects.filter(
            contact=contact,
            kind=TelegramLink.Kind.PAGE,
            used_at__isnull=True,
            expires_at__gt=fresh_after,
        )
        .order_by("-created_at", "-pk")
        .first()
    )
    if current is not None:
        token = token_for(current.nonce)
        if token_hash(token) == current.token_hash:  # else SECRET_KEY changed: a new one
            return _invite(token, current.expires_at, username)
    row, invite = make_link(contact, TelegramLink.Kind.PAGE, username, now)
    row.save()
    return invite


def invite_message(invite: Invite, lang: str | None) -> tuple[str, str]:
    """The subject and text of an invite (email or SMS) in ``lang`` (ru or en), with the
    token masked (``invite_tokens.MASK``): the live link is put in when it is sent, from the
    link the notification points at (``Notification.telegram_link``)."""
    date = timezone.localtime(invite.expires_at).date().isoformat()
    url = invite.url.replace(f"start={invite.token}", f"start={MASK}")
    return text("invite_subject", lang), text("invite", lang, url=url, date=date)


# --- updates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    chat_id: str
    text: str
    markup: dict[str, Any] | None = None  # an inline keyboard


# Telegram's ids fit in 64 bits (chat ids in 52); anything larger is not from Telegram.
ID_LIMIT = 2**63 - 1


class IgnoredUpdate(ValueError):
    """An update that can't be recorded (its id does not fit): ignored, answered 200 so that
    Telegram does not send it again."""


def _update_id(update: Any) -> int:
    if not isinstance(update, dict):
        raise ValueError("an update is a JSON object")
    update_id = update.get("update_id")
    if isinstance(update_id, bool) or not isinstance(update_id, int):
        raise ValueError("an update needs an integer update_id")
    if not 0 <= update_id < ID_LIMIT:
        raise IgnoredUpdate(f"update_id {update_id} is out of range")
    return update_id


def _chat_id(chat: Any) -> str:
    """A chat's id as the contact stores it; raises ``ValueError`` for anything but an
    integer Telegram could have sent (``Infinity``, ``1e400``, ``1.5``, ``true``, 2^70)."""
    value = chat["id"]
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > ID_LIMIT:
        raise ValueError(f"a chat id is an integer, not {str(value)[:40]!r}")
    return str(value)


def _update_kind(update: dict[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


def handle_update(
    update: Any, now: datetime | None = None
) -> Reply | preference_bot.Pressed | None:
    """Apply one update (once per update_id); the reply to send after commit, if any.

    Raises ``ValueError`` for something that is not an update.
    """
    update_id = _update_id(update)
    now = now or timezone.now()
    kind = _update_kind(update)
    try:
        with transaction.atomic():
            TelegramUpdate.objects.create(bot_id=bot_id(), update_id=update_id, kind=kind[:32])
            if kind == "message":
                return _on_message(update["message"], now)
            if kind == "my_chat_member":
                _on_member(update["my_chat_member"], now)
            if kind == "callback_query":
                return preference_bot.on_callback(update["callback_query"])
            return None
    except IntegrityError:
        logger.info("Telegram update %s already handled; ignored", update_id)
        return None
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError) as err:
        # Well-formed but not what it claims to be: recorded as handled, nothing done.
        logger.warning("Telegram update %s of kind %r not understood: %r", update_id, kind, err)
        TelegramUpdate.objects.get_or_create(
            bot_id=bot_id(), update_id=update_id, defaults={"kind": kind[:32]}
        )
        return None


def send_reply(reply: Reply) -> bool:
    """Send ``reply`` with sendMessage; False (logged) when Telegram did not take it."""
    data: dict[str, Any] = {"chat_id": reply.chat_id, "text": reply.text}
    if reply.markup is not None:
        data["reply_markup"] = reply.markup
    try:
        TelegramSender().call("sendMessage", data)
    except DeliveryError as err:
        logger.warning("reply to Telegram chat %s not sent: %s", reply.chat_id, err.message)
        return False
    return True


def process_update(update: Any) -> Reply | preference_bot.Pressed | None:
    """Handle one update and send its reply (or a button press's answer); raises
    ``ValueError`` for a non-update."""
    reply = handle_update(update)
    if isinstance(reply, Reply):
        send_reply(reply)
    elif reply is not None:
        preference_bot.answer(reply)
    return reply


def _command(message_text: str) -> tuple[str, str]:
    """``/start@my_bot abc`` → (``/start``, ``abc``); ("", text) for a non-command."""
    if not message_text.startswith("/"):
        return "", message_text
    head, _space, rest = message_text.partition(" ")
    return head.split("@", 1)[0].lower(), rest.strip()


def _on_message(message: dict[str, Any], now: datetime) -> Reply | None:
    chat = message["chat"]
    chat_id = _chat_id(chat)
    private = chat.get("type", "private") == "private"
    lang = (message.get("from") or {}).get("language_code") or _chat_language(chat_id)
    command, argument = _command(str(message.get("text") or ""))
    if command == "/start":
        answer = _link(argument, chat_id, now) if argument else _start(chat_id, now)
    elif command == "/stop":
        answer = _stop(chat_id, now)
    elif command == "/settings":
        settings_message = preference_bot.settings_message(chat_id, lang, private)
        return Reply(chat_id, settings_message.text, settings_message.markup)
    elif private:
        linked = UserContact.objects.filter(telegram_chat_id=chat_id).exists()
        answer = "already_linked" if linked else "how_to_link"
    else:
        return None  # chatter in a group the bot is in
    return Reply(chat_id, text(answer, lang))


def _chat_language(chat_id: str) -> str:
    """For a message without a ``language_code``: the language of the contact linked to the
    chat, else the service's."""
    linked = (
        UserContact.objects.filter(telegram_chat_id=chat_id)
        .exclude(language="")
        .values_list("language", flat=True)
        .first()
    )
    return linked or default_language()


def _link(token: str, chat_id: str, now: datetime) -> str:
    if not TOKEN_PATTERN.fullmatch(token):
        return "unknown"
    link = (
        TelegramLink.objects.select_for_update()
        .select_related("contact")
        .filter(token_hash=token_hash(token))
        .first()
    )
    if link is None:
        return "unknown"
    if link.used_at is not None:
        return "already_linked" if link.contact.telegram_chat_id == chat_id else "used"
    if link.expires_at <= now:
        return "expired"
    TelegramLink.objects.filter(pk=link.pk).update(used_at=now, used_by_chat=chat_id)
    # The contact's other links stop working: one live way in at a time.
    TelegramLink.objects.filter(contact_id=link.contact_id, used_at__isnull=True).update(
        used_at=now
    )
    UserContact.objects.filter(telegram_chat_id=chat_id).exclude(pk=link.contact_id).update(
        telegram_chat_id="", updated_at=now
    )
    UserContact.objects.filter(pk=link.contact_id).update(
        telegram_chat_id=chat_id, telegram_opt_out=False, telegram_blocked=False, updated_at=now
    )
    logger.info("Telegram chat linked to contact %s", link.contact_id)
    return "linked"


def _start(chat_id: str, now: datetime) -> str:
    linked = UserContact.objects.filter(telegram_chat_id=chat_id)
    if not linked.exists():
        return "how_to_link"
    resumed = linked.filter(telegram_opt_out=True).update(
        telegram_opt_out=False, telegram_blocked=False, updated_at=now
    )
    linked.filter(telegram_blocked=True).update(telegram_blocked=False, updated_at=now)
    return "resumed" if resumed else "already_linked"


def _stop(chat_id: str, now: datetime) -> str:
    changed = UserContact.objects.filter(telegram_chat_id=chat_id).update(
        telegram_opt_out=True, updated_at=now
    )
    return "stopped" if changed else "not_linked"


def _on_member(event: dict[str, Any], now: datetime) -> None:
    chat_id = _chat_id(event["chat"])
    status = str(event["new_chat_member"]["status"])
    if status in ("kicked", "left"):
        blocked = True
    elif status in ("member", "administrator", "creator", "restricted"):
        blocked = False
    else:
        return
    changed = (
        UserContact.objects.filter(telegram_chat_id=chat_id)
        .exclude(telegram_blocked=blocked)
        .update(telegram_blocked=blocked, updated_at=now)
    )
    if changed:
        logger.info("Telegram chat %s: bot %s", chat_id, "blocked" if blocked else "unblocked")


# --- long polling -------------------------------------------------------------------------------


def poll_offset() -> int:
    """The next getUpdates offset kept for this bot (0 at first)."""
    offset = TelegramPollOffset.objects.filter(bot_id=bot_id()).values_list(
        "next_offset", flat=True
    )
    return offset.first() or 0


def save_poll_offset(next_offset: int) -> None:
    TelegramPollOffset.objects.update_or_create(
        bot_id=bot_id(), defaults={"next_offset": next_offset}
    )


def poll_once(timeout: float) -> int:
    """One getUpdates (long-polling up to ``timeout`` seconds) from the kept offset; each
    update is handled, then the offset moved past it. Returns how many came.

    Raises ``DeliveryError``; ``senders.telegram.Conflict`` when a webhook is set or another
    poller took over.
    """
    offset = poll_offset()
    data: dict[str, Any] = {"timeout": int(timeout), "allowed_updates": ALLOWED_UPDATES}
    if offset:
        data["offset"] = offset
    updates = TelegramSender().call(
        "getUpdates", data, timeout=timeout + settings.NOTIFY_HTTP_TIMEOUT
    )
    if not isinstance(updates, list):
        raise DeliveryError("Telegram's getUpdates answered something that is not a list")
    for update in updates:
        try:
            update_id = _update_id(update)
        except ValueError as err:
            logger.warning("getUpdates gave a malformed update (%s); skipped", err)
            continue
        try:
            process_update(update)
        except ValueError as err:
            logger.warning("update %s not understood (%s); skipped", update_id, err)
        save_poll_offset(update_id + 1)
    return len(updates)


# --- housekeeping -------------------------------------------------------------------------------


def prune(now: datetime | None = None) -> dict[str, int]:
    """Forget handled update ids older than a week, and links dead for a month."""
    now = now or timezone.now()
    updates, _by_model = TelegramUpdate.objects.filter(received_at__lt=now - UPDATES_KEPT).delete()
    dead = now - LINKS_KEPT
    links, _by_model = (
        TelegramLink.objects.filter(expires_at__lt=dead)
        | TelegramLink.objects.filter(used_at__lt=dead)
    ).delete()
    return {"updates": updates, "links": links}
