"""Signed links to a user's preference page: no login, no password, nothing stored.

A token is ``django.core.signing`` of the user's id under SECRET_KEY, salted for this use,
with its time: unguessable, bound to one user, and refused after
``NOTIFY_PREFERENCE_LINK_DAYS`` (90) or when altered. Every email carries a fresh one in its
footer, and the bot sends one with ``/settings``.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext

SALT = "notifications.preferences.page"


class BadLink(Exception):
    """A token that was altered, has expired, or names no user."""


def page_token(user_id: int) -> str:
    return signing.dumps({"u": user_id}, salt=SALT, compress=True)


def user_id_of(token: str) -> int:
    """The user a page token was made for; raises ``BadLink``."""
    try:
        data = signing.loads(
            token, salt=SALT, max_age=settings.NOTIFY_PREFERENCE_LINK_DAYS * 86_400
        )
    except (signing.BadSignature, ValueError, TypeError):  # SignatureExpired is a BadSignature
        raise BadLink(token) from None
    user_id = data.get("u") if isinstance(data, dict) else None
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        raise BadLink(token)
    return user_id


def public_base_url() -> str:
    """Where users reach the service (PUBLIC_BASE_URL, else NOTIFY_PUBLIC_URL); "" if unset."""
    return (getattr(settings, "PUBLIC_BASE_URL", "") or settings.NOTIFY_PUBLIC_URL).rstrip("/")


def page_url(user_id: int) -> str:
    """The full link to ``user_id``'s preference page; "" when PUBLIC_BASE_URL is unset (a
    link that leads nowhere is worse than none)."""
    base = public_base_url()
    if not base:
        return ""
    return base + reverse("preferences-page", args=[page_token(user_id)])


def email_footer(
    user_id: int, language: str = "", unsubscribe: str = "", topic: str = ""
) -> tuple[str, str]:
    """The footer every email carries: the plain-text and the HTML lines with a fresh link to
    the user's preference page and, given ``unsubscribe`` (the one-click link) and ``topic``
    (its category's name), a link to unsubscribe from that topic, in ``language`` (else the
    service's); ("", "") when PUBLIC_BASE_URL is unset."""
    url = page_url(user_id)
    if not url:
        return "", ""
    with translation.override(language or settings.LANGUAGE_CODE):
        lines = [(gettext("Choose which notifications you get, and where"), url)]
        if unsubscribe:
            lines.append((gettext("Unsubscribe from %(topic)s") % {"topic": topic}, unsubscribe))
    text = "\n\n-- \n" + "".join(f"{label}: {link}\n" for label, link in lines)
    html = (
        '<p style="margin-top:2em;font-size:12px;color:#666">'
        + " · ".join(f'<a href="{escape(link)}">{escape(label)}</a>' for label, link in lines)
        + "</p>"
    )
    return text, html
