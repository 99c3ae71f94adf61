"""The policy step: before a round, and before each channel, may this notification go now?
If not, skip it (with the reason) or defer it (until when). Preferences (user × category ×
channel), quiet hours in the recipient's zone and frequency caps all answer here; delivery
consults this module and answers with its existing vocabulary (an attempt skipped with a
reason, a round deferred to a time). A required category bypasses all of it.

``load`` reads what a claimed batch needs in one query (each user's choices for the batch's
categories; the categories themselves come with the claim's own load, and the default
category from a short cache), and one more for the batch's suppressed email addresses
(``notifications.suppression``), so the policy costs no query per notification. A
suppressed address skips email for every category, required ones too: a dead address is
dead whatever the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist

from notifications.models import Notification, UserContact
from notifications.preferences import caps
from notifications.preferences.defaults import cached_default
from notifications.preferences.models import Category, Preference
from notifications.preferences.quiet_hours import Window, read_window, window_end, zone_of
from notifications.preferences.services import turned_off_reason
from notifications.suppression.services import normalize_address, suppressed_among


@dataclass
class Context:
    """What the policy knows about a claimed batch."""

    default: Category
    choices: dict[tuple[int, int, str], bool] = field(default_factory=dict)
    # The batch's suppressed email addresses (normalized) → the skip reason.
    suppressed: dict[str, str] = field(default_factory=dict)

    def category(self, notification: Notification) -> Category:
        return notification.category if notification.category_id else self.default


def load(notifications: list[Notification]) -> Context:
    """The context of a batch (its notifications loaded with ``category``): one query for
    the users' choices of the batch's categories that are not required."""
    context = Context(default=cached_default())
    wanted = {
        (n.user_id, context.category(n).pk)
        for n in notifications
        if not context.category(n).required
    }
    if wanted:
        rows = Preference.objects.filter(
            user_id__in={user for user, _ in wanted},
            category_id__in={category for _, category in wanted},
        ).values_list("user_id", "category_id", "channel", "enabled")
        context.choices = {(u, c, ch): enabled for u, c, ch, enabled in rows}
    context.suppressed = suppressed_among(_email_of(n) for n in notifications)
    return context


def _email_of(notification: Notification) -> str:
    """The email address of a notification's recipient (loaded with ``user__contact``)."""
    try:
        return notification.user.contact.effective_email
    except ObjectDoesNotExist:  # a user made before contacts existed
        return getattr(notification.user, "email", "") or ""


def quiet_window(contact: UserContact) -> Window | None:
    """The contact's quiet hours, else the service's (``NOTIFY_QUIET_HOURS``)."""
    if contact.quiet_hours:
        return read_window(contact.quiet_hours)
    return settings.NOTIFY_QUIET_WINDOW


@dataclass(frozen=True)
class Hold:
    """The round does not send: it waits ``until`` a time, or (``until`` None) the
    notification is not sent at all — expired when ``expire``, else suppressed."""

    reason: str
    until: datetime | None = None
    expire: bool = False


def quiet_hold(
    notification: Notification, contact: UserContact, category: Category, now: datetime
) -> Hold | None:
    """Inside the recipient's quiet hours: wait until they end (or expire, when its
    ``expires_at`` comes first); None outside them, and always for a required category."""
    if category.required:
        return None
    window = quiet_window(contact)
    if window is None:
        return None
    where = zone_of(contact)
    end = window_end(window, now, where)
    if end is None:
        return None
    local = end.astimezone(where)
    zone_name = getattr(where, "key", str(where))
    if notification.expires_at is not None and notification.expires_at <= end:
        return Hold(
            f"expires at {notification.expires_at:%Y-%m-%d %H:%M} UTC, before the quiet hours "
            f"{window} ({zone_name}) end at {local:%Y-%m-%d %H:%M}",
            expire=True,
        )
    return Hold(f"quiet hours {window} ({zone_name}) until {local:%Y-%m-%d %H:%M}", until=end)


@dataclass(frozen=True)
class Slot:
    """A frequency-cap slot a round took, to give back if it sends nothing."""

    user_id: int
    category_id: int
    window_start: datetime


def take_slot(
    notification: Notification, contact: UserContact, category: Category, now: datetime
) -> Slot | Hold | None:
    """For a capped, not required category: take a slot of the user's current window (a
    ``Slot``), or, over the cap, a ``Hold``: wait for the next window, or skip, as the
    category says. None when there is no cap."""
    if category.required or not category.cap_count or not category.cap_window:
        return None
    where = zone_of(contact)
    start = caps.window_start(category, now, where)
    if caps.reserve(notification.user_id, category, start):
        return Slot(notification.user_id, category.pk, start)
    end = caps.window_end(category, start, where)
    reason = f"over the cap of {category.cap_count} per {_span(category)} for {category.name_en}"
    if category.over_cap == Category.OverCap.SKIP:
        return Hold(f"{reason}; skipped")
    if notification.expires_at is not None and notification.expires_at <= end:
        return Hold(f"{reason}; expires before the next window", expire=True)
    local = end.astimezone(where)
    return Hold(f"{reason}; waits until {local:%Y-%m-%d %H:%M}", until=end)


def give_back(slot: Slot) -> None:
    caps.give_back(slot.user_id, slot.category_id, slot.window_start)


def channel_refusal(
    notification: Notification, category: Category, channel: str, context: Context
) -> str:
    """Why ``channel`` may not carry it for this user ("turned off Email for Promotions"),
    or "" when it may."""
    if category.required:
        return ""
    enabled = context.choices.get((notification.user_id, category.pk, channel))
    if enabled is None:
        enabled = category.channel_default(channel)
    return "" if enabled else turned_off_reason(category, channel)


def address_refusal(channel: str, address: str, context: Context) -> str:
    """Why ``channel`` may not send to ``address`` ("suppressed: hard bounce on 3 Dec"), or
    "" when it may. Whatever the category: a dead address is dead."""
    if channel != "email":
        return ""
    return context.suppressed.get(normalize_address(address), "")


def _span(category: Category) -> str:
    window = category.cap_window
    days, seconds = window.days, window.seconds
    if days and not seconds:
        return "day" if days == 1 else f"{days} days"
    hours = window.total_seconds() / 3600
    return "hour" if hours == 1 else f"{window}"
