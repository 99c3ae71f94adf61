"""Helpers of the paid-broadcast tests: recipients with a Telegram chat each, and reading
which chats a campaign reached."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model

from notifications.models import Campaign, Notification, UserContact

User = get_user_model()
_chats = itertools.count(1)


def chat_id() -> str:
    """A Telegram chat id no other recipient of this run has (pacing keys are per chat)."""
    return str(9_000_000 + next(_chats))


def recipients(count: int, prefix: str) -> list:
    """``count`` users, each with a Telegram chat of their own."""
    users = User.objects.bulk_create(User(username=f"{prefix}{i}") for i in range(count))
    UserContact.objects.bulk_create(
        UserContact(user=user, telegram_chat_id=chat_id(), language="en") for user in users
    )
    return users


def chats_of(campaign: Campaign) -> set[str]:
    """The Telegram chats of a campaign's recipients."""
    return set(
        UserContact.objects.filter(
            user__in=Notification.objects.filter(campaign=campaign).values("user")
        ).values_list("telegram_chat_id", flat=True)
    )


def ids_of(*campaigns: Campaign) -> list[int]:
    return list(
        Notification.objects.filter(campaign__in=campaigns)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
