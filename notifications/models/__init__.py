"""Contacts, notifications and the delivery attempts that record every try.

One module per concern; every model and shared choice is importable from here
(``from notifications.models import Notification``), as Django and the rest of the code
expect:

- ``choices``: ``Channel`` and ``LANGUAGE_CHOICES``, shared by the others;
- ``contacts``: ``UserContact`` and the Telegram links, updates and poll offsets;
- ``templates``: ``Template``;
- ``campaigns``: ``Campaign`` and ``CampaignSkip``;
- ``notifications``: ``Notification``, ``DeliveryAttempt``, ``ReceiptStatus`` and ``SmsPart``;
- ``limits``: ``SmsDailyCount`` and ``RateLimitSlot``;
- ``api``: ``ApiKey`` and ``ApiIdempotencyKey``;
- ``dashboard``: ``DashboardDay`` and ``DashboardCount``.

The modules import one another directly, never this package.
"""

from __future__ import annotations

from notifications.models.api import ApiIdempotencyKey, ApiKey
from notifications.models.campaigns import Campaign, CampaignSkip
from notifications.models.choices import LANGUAGE_CHOICES, Channel
from notifications.models.contacts import (
    TelegramLink,
    TelegramPollOffset,
    TelegramUpdate,
    UserContact,
)
from notifications.models.dashboard import DashboardCount, DashboardDay
from notifications.models.limits import RateLimitSlot, SmsDailyCount
from notifications.models.notifications import (
    DeliveryAttempt,
    Notification,
    ReceiptStatus,
    SmsPart,
)
from notifications.models.templates import Template

__all__ = [
    "LANGUAGE_CHOICES",
    "ApiIdempotencyKey",
    "ApiKey",
    "Campaign",
    "CampaignSkip",
    "Channel",
    "DashboardCount",
    "DashboardDay",
    "DeliveryAttempt",
    "Notification",
    "RateLimitSlot",
    "ReceiptStatus",
    "SmsDailyCount",
    "SmsPart",
    "TelegramLink",
    "TelegramPollOffset",
    "TelegramUpdate",
    "Template",
    "UserContact",
]
