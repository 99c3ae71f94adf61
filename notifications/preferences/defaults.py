"""The default category: the one notifications that name none belong to, made on first use,
and a short per-process cache of it for the consumer's hot path and the email sender."""

from __future__ import annotations

import time

from django.db import IntegrityError, transaction

from notifications.preferences.models import Category

DEFAULT_KEY = "general"


def default_category() -> Category:
    """The category of notifications that name none: the one marked default, made (as
    "general", opt-out, not required) when there is none yet."""
    category = Category.objects.filter(is_default=True).first()
    if category is not None:
        return category
    try:
        with transaction.atomic():
            category, _created = Category.objects.get_or_create(
                key=DEFAULT_KEY,
                defaults={
                    "name_en": "General",
                    "name_ru": "Общие",
                    "description_en": "Notifications that belong to no other category.",
                    "description_ru": "Уведомления, не относящиеся к другим категориям.",
                    "is_default": True,
                },
            )
    except IntegrityError:  # made by a concurrent call, or "general" exists but isn't default
        category = Category.objects.filter(is_default=True).first() or Category.objects.get(
            key=DEFAULT_KEY
        )
    return category


DEFAULT_CACHE_SECONDS = 30.0
_default: tuple[float, Category] | None = None


def cached_default() -> Category:
    """The default category, read at most every ``DEFAULT_CACHE_SECONDS`` per process."""
    global _default
    now = time.monotonic()
    if _default is None or now - _default[0] > DEFAULT_CACHE_SECONDS:
        _default = (now, default_category())
    return _default[1]


def forget_default() -> None:
    """Drop the cached default category (tests, and after an operator changes it)."""
    global _default
    _default = None
