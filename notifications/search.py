"""Finding notifications by what an operator types in the admin's search box.

Every word must match, as in any Django admin search, and a word matches what it always
matched — its user's username or email, or the message, containing it (in any case) — and
also the notification whose id it is. At a million rows each of these reads an index: the id
its primary key; the users are found first (a trigram index on PostgreSQL), then their
notifications by the user index; the message a trigram index on PostgreSQL (pg_trgm,
migration 0014), but for a campaign's message, which is looked for in the campaigns and
their notifications found by the campaign's index (migration 0019). SQLite scans, which at
its scale is quick.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils.text import smart_split, unescape_string_literal

from notifications.models import Campaign, Notification

# The largest id a notification can have (a 64-bit integer).
MAX_ID = 2**63 - 1
# A word that matches more users than this finds their notifications by a subquery rather
# than by a list of ids.
USERS_LISTED = 200
# And campaigns whose message matches.
CAMPAIGNS_LISTED = 200


def search_words(text: str) -> list[str]:
    """The words of ``text`` as the admin splits them: at spaces, a quoted phrase kept
    whole."""
    words = []
    for bit in smart_split(text):
        if bit[:1] in ('"', "'") and bit[0] == bit[-1] and len(bit) > 1:
            bit = unescape_string_literal(bit)
        if bit:
            words.append(bit)
    return words


def notification_search(queryset: QuerySet[Notification], text: str) -> QuerySet[Notification]:
    """The notifications of ``queryset`` that every word of ``text`` matches: by id, by its
    user's username or email, or by its message (each containing the word, in any case)."""
    User = get_user_model()
    for word in search_words(text):
        users = User.objects.filter(
            Q(**{f"{User.USERNAME_FIELD}__icontains": word})
            | Q(**{f"{User.get_email_field_name()}__icontains": word})
        )
        matches = message_matches(word)
        if (among := _listed(users, USERS_LISTED)) is not None:
            matches |= Q(user_id__in=among)
        if word.isdigit() and int(word) <= MAX_ID:
            matches |= Q(pk=int(word))
        queryset = queryset.filter(matches)
    return queryset


def message_matches(word: str) -> Q:
    """The notifications whose message contains ``word`` (in any case): a row with a message
    of its own through the trigram index, which leaves out the rows of a campaign's message
    (``Notification.campaign_message``, migration 0019); those through their campaign's."""
    own = Q(message__icontains=word) & (Q(campaign_message=False) | Q(campaign__isnull=True))
    campaigns = _listed(Campaign.objects.filter(message__icontains=word), CAMPAIGNS_LISTED)
    if campaigns is None:
        return own
    return own | Q(campaign_message=True, campaign__in=campaigns)


def _listed(matching: QuerySet, most: int) -> list[int] | QuerySet | None:
    """The ids of ``matching``: a list while there are at most ``most`` (PostgreSQL ORs two
    index scans, but not an index scan and a subplan), else the subquery; None when none."""
    ids = list(matching.values_list("pk", flat=True)[: most + 1])
    if not ids:
        return None
    return ids if len(ids) <= most else matching.values("pk")
