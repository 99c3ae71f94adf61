"""What each channel sends for a notification: its text, and for email a subject and HTML.

Senders ask ``content_for(notification, channel)`` instead of reading the message directly,
so a notification can carry a different form per channel: one made from a template keeps
what it was rendered to for each channel (``Notification.rendered``, written when it was
created), and that is what is sent; any other sends its ``message`` everywhere.

Telegram's texts use its HTML subset (``parse_mode=HTML``): ``check_telegram_markup`` holds a
text to it, and ``telegram_preview_html`` shows such a text in a browser safely.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.utils import translation
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

if TYPE_CHECKING:
    from notifications.models import Notification


@dataclass(frozen=True)
class Content:
    text: str
    subject: str = ""
    html: str = ""
    parse_mode: str = ""  # Telegram: "HTML" when the text uses Telegram's HTML subset


def default_subject(language: str = "") -> str:
    """``NOTIFY_EMAIL_SUBJECT``, else “Notification” in ``language`` (the recipient's), else in
    the service's (``DJANGO_LANGUAGE_CODE``), never in the operator's: the admin's preview
    shows what the consumer sends."""
    if settings.NOTIFY_EMAIL_SUBJECT:
        return settings.NOTIFY_EMAIL_SUBJECT
    with translation.override(language or settings.LANGUAGE_CODE):
        return gettext("Notification")


def recipient_language(notification: Notification) -> str:
    """The language a notification is for: the one its template was rendered in, else its
    user's contact's ("" when neither says). No query when the contact is loaded, as the
    consumer's claim and the admin's preview load it."""
    language = (notification.rendered or {}).get("language")
    if language:
        return str(language)
    try:
        return notification.user.contact.language or ""
    except ObjectDoesNotExist:
        return ""


def content_for(notification: Notification, channel: str) -> Content:
    """The content ``channel`` sends for ``notification``."""
    rendered = (notification.rendered or {}).get(channel)
    if isinstance(rendered, dict) and rendered.get("text"):
        if channel == "email":
            return Content(
                text=rendered["text"],
                subject=rendered.get("subject")
                or notification.subject
                or default_subject(recipient_language(notification)),
                html=rendered.get("html") or "",
            )
        return Content(text=rendered["text"], parse_mode=rendered.get("parse_mode") or "")
    if channel == "email":
        return Content(
            text=notification.message,
            subject=notification.subject or default_subject(recipient_language(notification)),
        )
    return Content(text=notification.message)


# --- Telegram's HTML subset (parse_mode=HTML) ---------------------------------------------

# tag -> the attributes it may carry
TELEGRAM_TAGS: dict[str, set[str]] = {
    "b": set(),
    "strong": set(),
    "i": set(),
    "em": set(),
    "u": set(),
    "ins": set(),
    "s": set(),
    "strike": set(),
    "del": set(),
    "span": {"class"},
    "tg-spoiler": set(),
    "a": {"href"},
    "code": {"class"},
    "pre": set(),
    "blockquote": {"expandable"},
}
TELEGRAM_ENTITIES = {"lt", "gt", "amp", "quot"}
_TOKEN = re.compile(
    r"<(?P<close>/?)(?P<tag>[A-Za-z][A-Za-z0-9-]*)(?P<attrs>(?:\s+[^\s=>/]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*)\s*(?P<self>/?)>"
    r"|&(?P<entity>#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]*);"
    r"|(?P<bare>[<>&])"
)
_ATTR = re.compile(r"([^\s=>/]+)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+))?")
HREF_SCHEMES = ("http", "https", "tg", "mailto")  # each but mailto followed by //


def _attributes(raw: str) -> list[tuple[str, str]]:
    """Each attribute's name in lower case and its value as a browser reads it: unquoted,
    entities decoded."""
    pairs = []
    for name, value in _ATTR.findall(raw):
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        pairs.append((name.lower(), html.unescape(value)))
    return pairs


def href_allowed(href: str) -> bool:
    """Whether a link's ``href`` (entities decoded) uses one of ``HREF_SCHEMES``, read with
    every space and control or invisible character taken out, in any case: so
    ``jav&#x09;ascript:`` and `` JavaScript:`` are refused as ``javascript:`` is."""
    url = "".join(char for char in href if char.isprintable() and not char.isspace())
    scheme, colon, rest = url.partition(":")
    scheme = scheme.lower()
    if not colon or not scheme.isascii() or scheme not in HREF_SCHEMES:
        return False
    return scheme == "mailto" or rest.startswith("//")


def _tag_problem(tag: str, attrs: list[tuple[str, str]]) -> str | None:
    """Why Telegram can't take this opening tag with these attributes, or None."""
    if tag not in TELEGRAM_TAGS:
        allowed = ", ".join(f"<{name}>" for name in TELEGRAM_TAGS)
        return gettext("the tag <%(tag)s> is not allowed; Telegram allows %(allowed)s.") % {
            "tag": tag,
            "allowed": allowed,
        }
    names = [name for name, _value in attrs]
    for name in names:
        if name not in TELEGRAM_TAGS[tag]:
            return gettext("<%(tag)s> cannot have the attribute %(attr)s.") % {
                "tag": tag,
                "attr": name,
            }
        if names.count(name) > 1:
            return gettext("<%(tag)s> has the attribute %(attr)s more than once.") % {
                "tag": tag,
                "attr": name,
            }
    values = dict(attrs)
    if tag == "a" and not href_allowed(values.get("href", "")):
        return gettext("a link needs an href starting with http://, https://, tg:// or mailto:.")
    if tag == "span" and values.get("class") != "tg-spoiler":
        return gettext('<span> is allowed only as <span class="tg-spoiler">.')
    if tag == "code" and "class" in values and not values["class"].startswith("language-"):
        return gettext('<code> may only have class="language-…".')
    return None


def check_telegram_markup(text: str) -> None:
    """Raises ``ValidationError`` unless ``text`` is markup Telegram's ``parse_mode=HTML``
    takes: only its tags and attributes, each attribute once, links only to ``HREF_SCHEMES``;
    each tag closed in order; ``<``, ``>``, ``&`` escaped. (Its length is the caller's.)"""

    def refuse(problem: str) -> ValidationError:
        return ValidationError(
            gettext("Telegram text: %(problem)s") % {"problem": problem}, code="telegram_html"
        )

    stack: list[str] = []
    for match in _TOKEN.finditer(text):
        if match["bare"]:
            raise refuse(
                gettext("a bare “%(char)s” must be written as &lt;, &gt; or &amp;.")
                % {"char": match["bare"]}
            )
        if match["entity"]:
            name = match["entity"]
            if not name.startswith("#") and name not in TELEGRAM_ENTITIES:
                raise refuse(gettext("the entity &%(name)s; is not supported.") % {"name": name})
            continue
        tag = match["tag"].lower()
        if match["close"] or match["self"]:
            if tag not in TELEGRAM_TAGS:
                raise refuse(_tag_problem(tag, []) or "")
            if match["self"]:
                raise refuse(gettext("<%(tag)s/> must have a closing tag instead.") % {"tag": tag})
            if not stack or stack[-1] != tag:
                raise refuse(gettext("</%(tag)s> closes a tag that is not open.") % {"tag": tag})
            stack.pop()
            continue
        problem = _tag_problem(tag, _attributes(match["attrs"]))
        if problem:
            raise refuse(problem)
        stack.append(tag)
    if stack:
        raise refuse(gettext("<%(tag)s> is never closed.") % {"tag": stack[-1]})


def telegram_preview_html(text: str) -> SafeString:
    """``text`` (a Telegram-HTML message, checked or not) as HTML a browser may show inside a
    page. Each tag ``check_telegram_markup`` accepts is written again from the allow-list, with
    only its allowed attributes, their values escaped (a link also opens in a new tab, without
    a referrer); any other tag, a closing tag that closes nothing open, an entity or a
    character is escaped, so it shows as text. Tags left open are closed at the end. Raises
    nothing."""
    parts: list[str] = []
    stack: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        parts.append(escape(text[position : match.start()]))
        position = match.end()
        parts.append(_preview_token(match, stack))
    parts.append(escape(text[position:]))
    parts.extend(f"</{tag}>" for tag in reversed(stack))
    return mark_safe("".join(parts))


def _preview_token(match: re.Match, stack: list[str]) -> str:
    entity = match["entity"]
    if entity and (entity.startswith("#") or entity in TELEGRAM_ENTITIES):
        return escape(html.unescape(match[0]))
    tag = (match["tag"] or "").lower()
    if not tag or match["self"] or tag not in TELEGRAM_TAGS:
        return escape(match[0])
    if match["close"]:
        if stack and stack[-1] == tag:
            stack.pop()
            return f"</{tag}>"
        return escape(match[0])
    attrs = _attributes(match["attrs"])
    if _tag_problem(tag, attrs):
        return escape(match[0])
    stack.append(tag)
    written = "".join(
        f' {name}="{escape(value)}"' if value else f" {name}" for name, value in attrs
    )
    if tag == "a":
        written += ' target="_blank" rel="noopener noreferrer"'
    return f"<{tag}{written}>"
