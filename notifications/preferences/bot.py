"""The bot's ``/settings``: a user turns topics (categories) on or off per channel with the
buttons of one message, in a private chat linked to their contact.

``notifications.telegram_bot`` hands this module the ``/settings`` command and every
``callback_query`` (a button pressed), inside the transaction that records the update's id, so
a replayed update changes nothing and is answered once.

**The message**: the topics with their descriptions, the ones always sent, why a channel
can't reach the user (no address, opted out), and the preference page's link when
PUBLIC_BASE_URL is set. **The keyboard**, two rows a topic: its name (pressed: its
description in a short notice), then one button a channel, ``✅ Telegram`` or ``❌ Email``.

**Callback data** (Telegram allows 64 bytes): ``pref:<category id>:<channel>:<1|0>`` sets the
channel on (1) or off (0), the state the button asks for, not a flip, so a press repeated
before the keyboard is redrawn changes nothing more; ``pref:<category id>`` asks for the
description. A press applies only to the contact linked to the chat it came from, and only
when the presser is that chat (a private chat): the data names no user, so a press in another
chat can't reach this user's preferences. A press whose data is malformed, names an unknown
or required category, or comes from a chat that is not linked changes nothing and gets a
short answer. Each press is answered (``answerCallbackQuery``, which ends the spinner), and
the keyboard is redrawn in place (``editMessageReplyMarkup``) when it no longer shows the
user's state. Every text is English, translated by the catalogue (locale/ru), in the user's
language: their Telegram ``language_code``, else their contact's, else the service's.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from notifications.models import Channel, UserContact
from notifications.preferences import links
from notifications.preferences.models import Category
from notifications.preferences.reach import unreachable
from notifications.preferences.services import CategoryState, preference_set, states_of
from notifications.rendering import default_language
from notifications.senders.base import DeliveryError
from notifications.senders.telegram import TelegramSender

logger = logging.getLogger(__name__)

DATA = re.compile(r"pref:([1-9][0-9]{0,17})(?::(telegram|email|sms):([01]))?")
# Telegram takes at most 100 buttons in a keyboard; a topic takes four.
KEYBOARD_TOPICS = 24
# An answerCallbackQuery notice is at most 200 characters; a message, 4096.
NOTICE_LIMIT = 200
TEXT_LIMIT = 4096
ON, OFF = "✅", "❌"

TEXTS: dict[str, Promise] = {
    "title": _("Your notifications. Tap a channel to turn it on (✅) or off (❌) for a topic:"),
    "always": _("Always sent: %(names)s."),
    "page": _("All settings on the web: %(url)s"),
    "more": _("%(shown)s of %(total)s topics are here; the web page has all of them."),
    "nothing": _("There is nothing to choose: every notification is sent."),
    "not_linked": _(
        "This chat is not linked, so there is nothing to set. Open the personal link you "
        "received (by email or SMS) and press Start."
    ),
    "private_only": _("Notification settings are changed in a private chat with the bot."),
    "turned_on": _("%(channel)s on: %(topic)s"),
    "turned_off": _("%(channel)s off: %(topic)s"),
    "stale": _("This button is out of date; nothing changed. Send /settings for new ones."),
    "press_not_linked": _("This chat is not linked; nothing changed."),
}


def language(code: str | None) -> str:
    """``ru`` for a Russian ``language_code`` (ru, ru-RU), else ``en`` (as the bot reads it)."""
    return "ru" if (code or "").lower().replace("_", "-").split("-")[0] == "ru" else "en"


def text(key: str, lang: str | None, **values: Any) -> str:
    """Text ``key`` in ``lang`` (a ``language_code`` or ru/en); raises ``KeyError`` for an
    unknown key."""
    with translation.override(language(lang)):
        message = str(TEXTS[key])
    return message % values if values else message


def _contact_of(chat_id: str) -> UserContact | None:
    return (
        UserContact.objects.filter(telegram_chat_id=chat_id)
        .select_related("user")
        .order_by("pk")
        .first()
    )


def keyboard(states: list[CategoryState], lang: str) -> dict[str, Any]:
    """The inline keyboard of ``states`` (the first ``KEYBOARD_TOPICS``), in ``lang``."""
    rows: list[list[dict[str, str]]] = []
    with translation.override(language(lang)):
        labels = {channel: str(label) for channel, label in Channel.choices}
    for state in states[:KEYBOARD_TOPICS]:
        pk = state.category.pk
        rows.append([{"text": state.category.name(lang), "callback_data": f"pref:{pk}"}])
        rows.append(
            [
                {
                    "text": f"{ON if on else OFF} {labels[channel]}",
                    "callback_data": f"pref:{pk}:{channel}:{0 if on else 1}",
                }
                for channel, on in state.channels.items()
            ]
        )
    return {"inline_keyboard": rows}


@dataclass(frozen=True)
class Message:
    """What ``/settings`` answers: a text, and its keyboard when there is one."""

    text: str
    markup: dict[str, Any] | None = None


def settings_message(chat_id: str, lang: str | None, private: bool) -> Message:
    """The answer to ``/settings`` in chat ``chat_id`` (``lang``: the sender's
    ``language_code``, else the chat's language)."""
    lang = language(lang)
    if not private:
        return Message(text("private_only", lang))
    contact = _contact_of(chat_id)
    if contact is None:
        return Message(text("not_linked", lang))
    states = states_of(contact.user)
    required = Category.objects.filter(required=True).order_by("name_en", "pk")
    names = ", ".join(category.name(lang) for category in required)
    notes = [names and text("always", lang, names=names)]
    if len(states) > KEYBOARD_TOPICS:
        notes.append(text("more", lang, shown=KEYBOARD_TOPICS, total=len(states)))
    with translation.override(lang):
        notes += [str(reason) for reason in unreachable(contact).values()]
    url = links.page_url(contact.user_id)
    notes.append(url and text("page", lang, url=url))
    extra = "\n".join(note for note in notes if note)
    head = text("title", lang) if states else text("nothing", lang)
    # With every description, else (too long for one message) with the names alone.
    for describe in (True, False):
        body = "\n".join([head, *_topic_lines(states[:KEYBOARD_TOPICS], lang, describe)])
        message = f"{body}\n\n{extra}" if extra else body
        if len(message) <= TEXT_LIMIT:
            break
    return Message(message[:TEXT_LIMIT], keyboard(states, lang) if states else None)


def _topic_lines(states: list[CategoryState], lang: str, describe: bool) -> list[str]:
    lines = []
    for state in states:
        name, about = state.category.name(lang), state.category.description(lang)
        lines.append(f"• {name} — {about}" if describe and about else f"• {name}")
    return lines


@dataclass(frozen=True)
class Pressed:
    """The answer to a button press: a notice, and the keyboard to redraw (None: as it is)."""

    callback_query_id: str
    notice: str
    chat_id: str = ""
    message_id: int | None = None
    markup: dict[str, Any] | None = None


def _integer(value: Any) -> int | None:
    """An id Telegram could have sent, else None."""
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**63:
        return None
    return value


def on_callback(callback: dict[str, Any]) -> Pressed:
    """Apply one button press (see the module's docstring); the answer to send after commit.

    Raises ``KeyError`` or ``TypeError`` for a callback without an id (nothing to answer).
    """
    query_id = str(callback["id"])
    presser = callback.get("from") or {}
    message = callback.get("message") or {}
    chat = message.get("chat") or {}
    chat_id = _integer(chat.get("id"))
    contact = None
    if chat_id is not None and _integer(presser.get("id")) == chat_id:
        contact = _contact_of(str(chat_id))
    lang = language(
        presser.get("language_code") or (contact.language if contact else "") or default_language()
    )
    if contact is None:
        return Pressed(query_id, text("press_not_linked", lang))
    match = DATA.fullmatch(str(callback.get("data") or ""))
    category = match and Category.objects.filter(pk=int(match[1]), required=False).first()
    if not category:
        return Pressed(query_id, text("stale", lang))
    if match[2] is None:
        about = category.description(lang) or category.name(lang)
        return Pressed(query_id, about[:NOTICE_LIMIT])
    channel, enabled = match[2], match[3] == "1"
    preference_set(user=contact.user, category=category, channel=channel, enabled=enabled)
    with translation.override(lang):
        label = str(Channel(channel).label)
    key = "turned_on" if enabled else "turned_off"
    notice = text(key, lang, channel=label, topic=category.name(lang))[:NOTICE_LIMIT]
    message_id = _integer(message.get("message_id"))
    markup = keyboard(states_of(contact.user), lang)
    if message_id is None or markup == message.get("reply_markup"):
        return Pressed(query_id, notice)
    return Pressed(query_id, notice, str(chat_id), message_id, markup)


def answer(pressed: Pressed) -> None:
    """Send the answer to a press, and the redrawn keyboard; Telegram's refusals are logged."""
    sender = TelegramSender()
    try:
        sender.call(
            "answerCallbackQuery",
            {"callback_query_id": pressed.callback_query_id, "text": pressed.notice},
        )
    except DeliveryError as err:
        logger.warning("answer to a button press not sent: %s", err.message)
    if pressed.markup is None:
        return
    try:
        sender.call(
            "editMessageReplyMarkup",
            {
                "chat_id": pressed.chat_id,
                "message_id": pressed.message_id,
                "reply_markup": pressed.markup,
            },
        )
    except DeliveryError as err:
        logger.warning("keyboard in Telegram chat %s not redrawn: %s", pressed.chat_id, err.message)
