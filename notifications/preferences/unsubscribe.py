"""One-click unsubscribe (RFC 8058, with RFC 2369's ``List-Unsubscribe``): every email of a
category users may turn off carries

    List-Unsubscribe: <https://…/unsubscribe/<token>/>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click

and a ``POST`` to that address (a mail provider's button, or ours) turns that category's email
off for that user, through ``services.preference_set`` like every other change. ``GET`` shows
a page with the button (``views.unsubscribe``).

The token is ``django.core.signing`` of (user, category, channel) under SECRET_KEY, salted for
this use: unguessable, bound to those three, and refused when altered. It does not expire: a
mail provider may send the POST long after the mail arrived, and an old email's link must
still work (the worst a leaked one can do is turn that one category off for that one user,
which its owner undoes on their page). Required (transactional) categories carry no header,
and neither does mail without a user or without ``PUBLIC_BASE_URL``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.urls import reverse

from notifications.models import Channel, Notification
from notifications.preferences.defaults import cached_default
from notifications.preferences.links import public_base_url
from notifications.preferences.models import Category

SALT = "notifications.preferences.unsubscribe"
ONE_CLICK = "List-Unsubscribe=One-Click"


class BadToken(Exception):
    """A token that was altered, or names a user or category that is gone."""


@dataclass(frozen=True)
class Target:
    """What a token turns off: ``channel`` of ``category`` for ``user``."""

    user: AbstractBaseUser
    category: Category
    channel: str


def token(user_id: int, category_id: int, channel: str = Channel.EMAIL) -> str:
    return signing.dumps({"u": user_id, "c": category_id, "ch": channel}, salt=SALT, compress=True)


def _ids(value: str) -> tuple[int, int, str]:
    try:
        data = signing.loads(value, salt=SALT)
    except (signing.BadSignature, ValueError, TypeError):
        raise BadToken(value) from None
    if not isinstance(data, dict):
        raise BadToken(value)
    user_id, category_id, channel = data.get("u"), data.get("c"), data.get("ch")
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (user_id, category_id))
    if not ints or channel not in Channel.values:
        raise BadToken(value)
    return user_id, category_id, channel


def target_of(value: str) -> Target:
    """What ``value`` turns off; raises ``BadToken``."""
    user_id, category_id, channel = _ids(value)
    user = get_user_model().objects.filter(pk=user_id).first()
    category = Category.objects.filter(pk=category_id).first()
    if user is None or category is None:
        raise BadToken(value)
    return Target(user, category, channel)


def url(user_id: int, category: Category, channel: str = Channel.EMAIL) -> str:
    """The one-click link for ``channel`` of ``category`` for the user; "" for a required
    category or without PUBLIC_BASE_URL."""
    base = public_base_url()
    if not base or category.required:
        return ""
    return base + reverse("unsubscribe", args=[token(user_id, category.pk, channel)])


def category_of(notification: Notification) -> Category:
    """The notification's category: its own, else the default one."""
    return notification.category if notification.category_id else cached_default()


def email_link(notification: Notification) -> tuple[str, Category | None]:
    """The one-click link an email of ``notification`` carries, and its category; ("", None)
    when it carries none (no user, a required category, no PUBLIC_BASE_URL)."""
    if not notification.user_id or not public_base_url():
        return "", None
    category = category_of(notification)
    link = url(notification.user_id, category)
    return (link, category) if link else ("", None)


def headers(link: str) -> dict[str, str]:
    """The RFC 8058 headers for ``link``; {} for none."""
    if not link:
        return {}
    return {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": ONE_CLICK}
