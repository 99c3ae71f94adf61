"""Digests: a burst of notifications of one user, category and ``digest_key`` sent as one.

Digests are notifications too. The first item with a key opens a digest: a notification row
(``digest_size`` > 0) scheduled for the end of its category's digest window, which the
pipeline sends like any other. Items are saved ``batched`` and point at it (``digest``); an
item arriving while the digest is still scheduled joins it (one row lock, and a partial
unique constraint so two openers at once end with one digest). An item arriving once the
digest was claimed opens the next one.

When the digest is claimed, its message is made from the items still batched
(``fill``): a single item is sent as that item; several as the template's digest text (or a
plain list) with their count. When the digest ends (sent, failed, expired, cancelled,
suppressed), its items end the same way, pointing at it (``settle``). A failed send is
retried as one message, like any notification: its items wait with it. Nothing is lost or
sent twice: an item is sent only as part of the one digest it points at.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from notifications.models import Notification, UserContact
from notifications.preferences.models import Category
from notifications.rendering import default_language, render_digest, user_values

Status = Notification.Status
# A digest's row holds this in ``message`` until it is sent (a digest is made when sent).
PLACEHOLDER = "(digest)"


def validate_key(key: str, category: Category) -> str:
    """The digest key to store; raises ``ValidationError`` when the category collects no
    digests or the key is too long."""
    key = (key or "").strip()
    if not key:
        return ""
    if len(key) > Notification._meta.get_field("digest_key").max_length:
        raise ValidationError({"digest_key": _("The digest key is at most 200 characters.")})
    if "\x00" in key:
        raise ValidationError({"digest_key": _("The digest key contains a NUL character.")})
    if category.digest_window is None:
        raise ValidationError(
            {
                "digest_key": _(
                    "The category “%(category)s” collects no digests: give it a digest window, "
                    "or send without a digest key."
                )
                % {"category": category.key}
            }
        )
    return key


def collect(
    items: list[Notification], categories: dict[int, Category]
) -> list[tuple[int, datetime]]:
    """Attach saved items (``batched``, with a ``digest_key`` and a category) to the open
    digest of their user, category and key, opening one where there is none. Call inside the
    transaction that saved them. Returns the (id, due) of digests opened, to ring after
    commit."""
    opened: list[tuple[int, datetime]] = []
    groups: dict[tuple[int, int, str], list[Notification]] = defaultdict(list)
    for item in items:
        groups[(item.user_id, item.category_id, item.digest_key)].append(item)
    now = timezone.now()
    for (user_id, category_id, key), members in groups.items():
        category = categories[category_id]
        digest_id = _join(user_id, category_id, key, len(members))
        if digest_id is None:
            digest_id, due = _open(user_id, category, key, len(members), now)
            if due is not None:
                opened.append((digest_id, due))
        Notification.objects.filter(pk__in=[m.pk for m in members]).update(digest_id=digest_id)
        for member in members:
            member.digest_id = digest_id
    return opened


def _open_digests(user_id: int, category_id: int, key: str):
    return Notification.objects.filter(
        user_id=user_id,
        category_id=category_id,
        digest_key=key,
        status=Status.SCHEDULED,
        digest_size__gt=0,
    )


def _join(user_id: int, category_id: int, key: str, count: int) -> int | None:
    """The open digest's id, its size grown by ``count`` (its row locked until commit)."""
    digest_id = (
        _open_digests(user_id, category_id, key)
        .select_for_update()
        .values_list("pk", flat=True)
        .first()
    )
    if digest_id is None:
        return None
    grown = Notification.objects.filter(pk=digest_id, status=Status.SCHEDULED).update(
        digest_size=F("digest_size") + count
    )
    return digest_id if grown else None


def _open(
    user_id: int, category: Category, key: str, count: int, now: datetime
) -> tuple[int, datetime | None]:
    """A new digest for ``count`` items, due at the end of the category's window; or, when
    another opened one at the same moment, that one (joined): (id, None)."""
    due = now + category.digest_window
    ttl = settings.NOTIFY_MESSAGE_TTL
    digest = Notification(
        user_id=user_id,
        category=category,
        digest_key=key,
        digest_size=count,
        message=PLACEHOLDER,
        status=Status.SCHEDULED,
        queued_at=now,
        send_at=due,
        next_attempt_at=due,
        expires_at=due + timedelta(seconds=ttl) if ttl else None,
    )
    digest._built = True  # queued here: the save signal leaves it alone
    try:
        with transaction.atomic():
            digest.save()
    except IntegrityError:  # opened by a concurrent call: join that one
        joined = _join(user_id, category.pk, key, count)
        if joined is None:
            raise
        return joined, None
    return digest.pk, due


# --- sending ----------------------------------------------------------------------------------


def fill(digests: list[Notification], contacts: dict[int, UserContact | None]) -> set[int]:
    """Make each claimed digest's message from its items still batched (one query for all):
    a single item as itself, several as one list. Returns the ids of digests left with no
    item (every one cancelled), which end cancelled."""
    if not digests:
        return set()
    items: dict[int, list[Notification]] = defaultdict(list)
    for item in (
        Notification.objects.filter(digest_id__in=[d.pk for d in digests], status=Status.BATCHED)
        .select_related("template")
        .order_by("created_at", "pk")
    ):
        items[item.digest_id].append(item)
    empty = set()
    for digest in digests:
        members = items.get(digest.pk, [])
        if not members:
            empty.add(digest.pk)
        elif len(members) == 1:
            _as_item(digest, members[0])
        else:
            _as_list(digest, members, contacts.get(digest.pk))
    return empty


def _as_item(digest: Notification, item: Notification) -> None:
    digest.message, digest.subject = item.message, item.subject
    digest.rendered, digest.template = item.rendered, item.template
    digest.telegram_link_id = item.telegram_link_id


def _as_list(digest: Notification, items: list[Notification], contact: UserContact | None) -> None:
    language = (contact.language if contact is not None else "") or default_language()
    count = len(items)
    template = items[0].template
    values: dict[str, Any] = {
        "count": count,
        "items": [{"message": i.message, "subject": i.subject} for i in items],
    }
    text = ""
    if template is not None and all(i.template_id == template.pk for i in items):
        for lang in (language, *(code for code in ("ru", "en") if code != language)):
            if template.digest_text(lang):
                try:
                    text = render_digest(
                        template, lang, {**user_values(digest.user, contact), **values}
                    )
                except ValidationError:
                    text = ""  # a text that fails for this user: the plain list instead
                if text:
                    language = lang
                    break
    with translation.override(language):
        if not text:
            head = ngettext(
                "%(count)s new notification:", "%(count)s new notifications:", count
            ) % {"count": count}
            text = "\n".join([head, *(f"• {i.message.strip()}" for i in items)])
        subject = ngettext("%(count)s new notification", "%(count)s new notifications", count) % {
            "count": count
        }
    digest.message, digest.subject, digest.rendered = text, subject, {}


def settle(digest_id: int, changes: dict[str, Any]) -> int:
    """A digest ended: its items still batched end as it did (status, channel, sent time),
    pointing at it. Returns how many."""
    status = changes["status"]
    if status not in FINAL_FOR_ITEMS:
        return 0
    return Notification.objects.filter(digest_id=digest_id, status=Status.BATCHED).update(
        status=status,
        channel=changes.get("channel", ""),
        sent_at=changes.get("sent_at"),
        next_attempt_at=None,
        last_error=f"in digest #{digest_id}: {changes.get('last_error') or status}"[:2000],
    )


FINAL_FOR_ITEMS = (
    Status.SENT,
    Status.FAILED,
    Status.EXPIRED,
    Status.CANCELLED,
    Status.SUPPRESSED,
)


def stranded(limit: int = 1000) -> int:
    """Items still batched whose digest ended (a worker died between the two writes), or
    whose digest is gone: settled now. For the sweeper."""
    settled = 0
    rows = (
        Notification.objects.filter(status=Status.BATCHED)
        .exclude(digest__status__in=(Status.SCHEDULED, Status.QUEUED, Status.SENDING))
        .values_list("digest_id", "digest__status", "digest__channel", "digest__sent_at")[:limit]
    )
    for digest_id, status, channel, sent_at in {tuple(r) for r in rows}:
        if digest_id is None:  # its digest was deleted before it went out
            settled += Notification.objects.filter(
                digest_id__isnull=True, status=Status.BATCHED
            ).update(status=Status.FAILED, last_error="its digest was deleted before it was sent")
            continue
        settled += settle(digest_id, {"status": status, "channel": channel, "sent_at": sent_at})
    return settled
