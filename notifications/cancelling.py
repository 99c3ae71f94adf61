"""Cancelling what has not been sent: a set of notifications in one transaction, and a
campaign's a chunk at a time.

"Cancel the rest" of a million-recipient campaign used to be one UPDATE of every waiting row:
half a minute in the operator's request, and nothing visible to the consumers until it
committed. Now the request first marks the campaign as being cancelled (``campaign_begin``:
its ``cancel_cursor`` set), then cancels those of its notifications being sent (they stop
before their next provider call; the consumer looks for them again when it takes up the
rest, for a claim that was under way as the mark committed). From that commit on no
consumer claims another of its notifications (``claiming``); their doorbells ring for
nothing. The request then cancels the rest of a small campaign (``REQUEST_CHUNK``); a large
one's are cancelled oldest first, ``NOTIFY_CANCEL_CHUNK`` per transaction, by the consumer
(``tasks.campaign_cancel_rest``, ahead of the doorbells in the queue); the ``cancel_cursor``
holds the last id cancelled until the last chunk, so the sweeper resumes a cancel whose
consumer died (``selectors.cancelling_campaigns``).

Before the mark, the consumers took the doorbells behind each chunk as it committed, ran
ahead of the cancel and sent a batch each before the next chunk caught up: bench-scale, a
million recipients, saw such a burst every ~15 s for the two minutes it watched.
"""

from __future__ import annotations

from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from notifications.models import Campaign, Notification

Status = Notification.Status
# What a cancel stops: not sent yet, or being sent (stops before its next provider call).
CANCELLABLE = frozenset(
    {Status.PENDING, Status.SCHEDULED, Status.QUEUED, Status.SENDING, Status.BATCHED}
)
# The rest of a campaign cancelled in the operator's request after the mark, if no more are
# left: a small campaign's at once. A large one's go to the consumer: its chunks in the
# request took 20 s beside the sending load, and while one ran, sends in flight were held up
# by its row locks (bench-scale).
REQUEST_CHUNK = 1000


def cancel(queryset: QuerySet[Notification]) -> int:
    """Cancel those of ``queryset`` not sent yet, in one transaction; returns how many. An
    item waiting in a digest leaves it (the digest is made of the items still waiting when
    it is sent); a digest not sent yet is cancelled with its items."""
    with transaction.atomic():
        target = queryset.filter(status__in=CANCELLABLE)
        if connection.features.can_return_rows_from_bulk_insert:
            changed, digests_hit = _cancel_returning(target)
        else:  # SQLite before 3.35: the digests among them read first
            digests_hit = list(target.filter(digest_size__gt=0).values_list("pk", flat=True))
            changed = target.update(status=Status.CANCELLED, next_attempt_at=None)
        if digests_hit:
            Notification.objects.filter(digest_id__in=digests_hit, status=Status.BATCHED).update(
                status=Status.CANCELLED, last_error="its digest was cancelled"
            )
    return changed


def _cancel_returning(target: QuerySet[Notification]) -> tuple[int, list[int]]:
    """Cancel ``target`` in one ``UPDATE … RETURNING``: how many, and which were digests.
    (Read first, the digests among a campaign's chunk of 10,000 cost as much as a third of
    its cancel: 2.5 s of 10 in bench-scale.)

    The statement is the queryset's own ``UPDATE`` (Django's compiler: its conditions on
    the table itself, ``id IN (…)`` for a chunk), not ``id IN (SELECT …)`` of it: such a
    subquery carried the model's ordering (a sort) and made PostgreSQL join a chunk's 10,000
    ids to the whole table, read from end to end, for each chunk of a million."""
    query = target.query.chain(UpdateQuery)
    query.add_update_values({"status": Status.CANCELLED, "next_attempt_at": None})
    query.get_initial_alias()
    joined = query.count_active_tables() > 1
    compiler = query.get_compiler(connection=connection)
    compiler.pre_sql_setup()  # a condition through a join becomes ``id IN (…)`` here
    update, params = compiler.as_sql()
    quote = connection.ops.quote_name
    recheck: list[str] = []
    if joined:
        # The status (``target``'s condition) went into that subquery: it is checked on the
        # row itself too, so that one a worker records sent meanwhile is read again by
        # PostgreSQL's recheck and left alone (the subquery alone would not be, and its
        # "sent" would become "cancelled" though the recipient got it). Without a join it
        # is on the row already, once.
        update += f" AND {quote('status')} IN ({', '.join(['%s'] * len(CANCELLABLE))})"
        recheck = sorted(CANCELLABLE)
    sql = f"{update} RETURNING {quote(Notification._meta.pk.column)}, {quote('digest_size')}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *recheck])
        rows = cursor.fetchall()
    return len(rows), [row_pk for row_pk, size in rows if size > 0]


class Cancelled(NamedTuple):
    """Where a cancel stopped: the last id looked at, whether none is left after it, and how
    many it cancelled."""

    last: int
    done: bool
    changed: int


def campaign_chunk(campaign_id: int, after: int = 0, size: int | None = None) -> Cancelled:
    """Cancel the campaign's next ``size`` (default ``NOTIFY_CANCEL_CHUNK``) notifications
    after id ``after`` (those not sent yet among them), in one transaction that also moves
    the campaign's ``cancel_cursor`` (cleared after the last). Oldest first: the consumers
    take them in that order. (By the primary key alone: a filter on the status made
    PostgreSQL sort every waiting row of a million for each chunk.)"""
    size = size or settings.NOTIFY_CANCEL_CHUNK
    ids = _ids_after(campaign_id, after, size)
    return _cancel_ids(campaign_id, after, ids, done=len(ids) < size)


def _ids_after(campaign_id: int, after: int, limit: int) -> list[int]:
    """The ids of the campaign's next ``limit`` notifications after id ``after``."""
    return list(
        Notification.objects.filter(campaign_id=campaign_id, pk__gt=after)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def _cancel_ids(campaign_id: int, after: int, ids: list[int], done: bool) -> Cancelled:
    """Cancel those of ``ids`` not sent yet, moving the campaign's ``cancel_cursor`` to the
    last (cleared when ``done``), in one transaction."""
    last = ids[-1] if ids else after
    with transaction.atomic():
        changed = cancel(Notification.objects.filter(pk__in=ids)) if ids else 0
        Campaign.objects.filter(pk=campaign_id).update(
            cancel_cursor=None if done else last, updated_at=timezone.now()
        )
    return Cancelled(last, done, changed)


def campaign_begin(campaign_id: int) -> Cancelled:
    """Start a campaign's cancel: mark it as being cancelled (its ``cancel_cursor`` set,
    below its first notification not sent yet: no claim that starts after this commit takes
    one of its notifications), then cancel those being sent (``cancel_sending``). Returns
    where the chunks start (``done`` if nothing is left to cancel) and how many it
    cancelled."""
    first = list(
        Notification.objects.filter(campaign_id=campaign_id, status__in=CANCELLABLE)
        .order_by("pk")
        .values_list("pk", flat=True)[:1]
    )
    after = first[0] - 1 if first else 0
    Campaign.objects.filter(pk=campaign_id).update(
        cancel_cursor=after if first else None, updated_at=timezone.now()
    )
    return Cancelled(after, not first, cancel_sending(campaign_id) if first else 0)


def cancel_sending(campaign_id: int) -> int:
    """Cancel the campaign's notifications being sent (they stop before their next provider
    call). Run after the mark has committed, and again when the consumer takes up the rest:
    a claim that began before the mark committed may commit after this first look."""
    return cancel(Notification.objects.filter(campaign_id=campaign_id, status=Status.SENDING))


def campaign_small_rest(campaign_id: int, after: int) -> Cancelled | None:
    """Cancel the campaign's notifications after id ``after`` if there are at most
    ``REQUEST_CHUNK`` (one read to know; None, and nothing done, if there are more)."""
    ids = _ids_after(campaign_id, after, REQUEST_CHUNK + 1)
    if len(ids) > REQUEST_CHUNK:
        return None
    return _cancel_ids(campaign_id, after, ids, done=True)


def campaign_rest(campaign_id: int, after: int) -> Cancelled:
    """Cancel those of the campaign's notifications being sent (``cancel_sending``), then
    those after id ``after`` a chunk at a time, to the last."""
    changed = cancel_sending(campaign_id)
    while True:
        after, done, n = campaign_chunk(campaign_id, after)
        changed += n
        if done:
            return Cancelled(after, done, changed)
