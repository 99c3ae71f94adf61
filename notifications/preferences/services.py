"""What users (and operators, and the API) do with preferences: read each category's state
per channel, and change it. Every place that changes them — the public page, the bot's
``/settings``, the API, the admin, one-click unsubscribe — goes through ``preference_set``.

A user's state for a category and channel is their ``Preference`` row when they have one,
else the category's default (``Category.channel_default``: opt-in categories start off).
Required categories are not a choice: they are never listed for users and can't be turned
off. Today's per-channel opt-outs on the contact (``email_opt_out`` …) still apply on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from notifications.models import Channel
from notifications.preferences.models import Category, Preference


@dataclass
class CategoryState:
    """One category as a user sees it: whether each channel is on, and why (a choice of
    theirs, or the category's default)."""

    category: Category
    channels: dict[str, bool] = field(default_factory=dict)
    chosen: set[str] = field(default_factory=set)  # channels set by the user, not by default


def choosable() -> list[Category]:
    """The categories users choose (every one but the required), in display order."""
    return list(Category.objects.filter(required=False).order_by("name_en", "pk"))


def states_of(
    user: AbstractBaseUser, categories: list[Category] | None = None
) -> list[CategoryState]:
    """Each choosable category's state for ``user`` (one query for the user's choices)."""
    categories = choosable() if categories is None else categories
    rows = Preference.objects.filter(user=user, category__in=categories).values_list(
        "category_id", "channel", "enabled"
    )
    chosen = {(category_id, channel): enabled for category_id, channel, enabled in rows}
    states = []
    for category in categories:
        state = CategoryState(category)
        for channel in settings.CHANNELS:
            if (category.pk, channel) in chosen:
                state.channels[channel] = chosen[(category.pk, channel)]
                state.chosen.add(channel)
            else:
                state.channels[channel] = category.channel_default(channel)
        states.append(state)
    return states


def category_get(key: str) -> Category:
    """The category called ``key``; raises ``ValidationError`` when there is none."""
    try:
        return Category.objects.get(key=key)
    except Category.DoesNotExist:
        raise ValidationError(
            {"category": _("There is no category with the key %(key)r.") % {"key": key}}
        ) from None


def preference_set(
    *, user: AbstractBaseUser, category: Category, channel: str, enabled: bool
) -> bool:
    """Turn ``channel`` of ``category`` on or off for ``user``; True when it changed.

    Repeats safely. Raises ``ValidationError`` for an unknown channel or a required
    category (which can't be turned off, nor chosen).
    """
    if channel not in Channel.values:
        raise ValidationError(
            {
                "channel": _("Unknown channel %(name)r; choose from telegram, email, sms.")
                % {"name": channel}
            }
        )
    if category.required:
        raise ValidationError(
            {
                "category": _("%(name)s is required: it can't be turned off.")
                % {"name": category.name_en}
            }
        )
    current = (
        Preference.objects.filter(user=user, category=category, channel=channel)
        .values_list("enabled", flat=True)
        .first()
    )
    before = category.channel_default(channel) if current is None else current
    Preference.objects.update_or_create(
        user=user, category=category, channel=channel, defaults={"enabled": enabled}
    )
    return before != enabled


def preferences_update(
    *, user: AbstractBaseUser, changes: dict[str, dict[str, Any]]
) -> list[CategoryState]:
    """Apply ``{category key: {channel: true/false}}`` for ``user``, all or nothing; the new
    states. Raises ``ValidationError`` naming each unknown category, unknown channel, required
    category or value that is not true or false, and changes nothing then."""
    if not isinstance(changes, dict):
        raise ValidationError(_("Give an object of categories, each an object of channels."))
    categories = {c.key: c for c in Category.objects.filter(key__in=list(changes))}
    errors: dict[str, list[str]] = {}
    planned: list[tuple[Category, str, bool]] = []
    for key, channels in changes.items():
        category = categories.get(key)
        if category is None:
            errors[key] = [_("There is no category with the key %(key)r.") % {"key": key}]
            continue
        if category.required:
            errors[key] = [_("%(name)s is required: it can't be turned off.") % {"name": key}]
            continue
        if not isinstance(channels, dict):
            errors[key] = [_('Give an object of channels, e.g. {"email": false}.')]
            continue
        for channel, enabled in channels.items():
            if channel not in Channel.values:
                errors[f"{key}.{channel}"] = [
                    _("Unknown channel %(name)r; choose from telegram, email, sms.")
                    % {"name": channel}
                ]
            elif not isinstance(enabled, bool):
                errors[f"{key}.{channel}"] = [_("Give true or false.")]
            else:
                planned.append((category, channel, enabled))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        for category, channel, enabled in planned:
            preference_set(user=user, category=category, channel=channel, enabled=enabled)
    return states_of(user)


def turned_off_reason(category: Category, channel: str) -> str:
    """Why the chain skips ``channel``: e.g. "turned off Email for Promotions"."""
    label = dict(Channel.choices)[channel]
    return f"turned off {label} for {category.name_en}"
