"""The outbox's database side, as the lanes use it: fan events out into deliveries, claim
due deliveries, record what each try came to, retry on the schedule or give up (disabling an
endpoint that got nothing through), send ``campaign.finished`` once per campaign, and prune
old events.

**Fanning out.** The trigger writes an event alone (the least it can in the statement that
sends a notification); a lane then makes its deliveries, one per enabled endpoint that wants
its type, a few hundred events per transaction. On PostgreSQL it takes the events not
``fanned_out`` with ``FOR UPDATE SKIP LOCKED``, so that two lanes never make the same event's
deliveries twice, and sets their flag. On SQLite, one writer at a time commits events in
``id`` order, so the lane goes by a high-water mark instead (``WebhookFanOutMark``): the
events above it, oldest first, and the mark moved past them in the same transaction; the
trigger writes events already flagged, out of the partial index, and no event is rewritten.
There, where the lane's write lock is the delivery workers' too, each transaction is a
statement or two with nothing worked out in Python while it holds the lock.
(PostgreSQL's writers commit ids out of order: a mark there would skip an event whose
transaction commits after a later one's.) ``unfanned`` and ``fanned`` say which events are
which, either way.

**Claiming.** A lane claims a batch of one endpoint's due deliveries at once: on PostgreSQL
in one short transaction, the rows picked with ``SELECT … FOR UPDATE SKIP LOCKED``; on SQLite
by one ``UPDATE … RETURNING`` that picks them itself. Either way they are given a lease
(``lease_expires_at``). While the lease holds, no other lane on any host takes them; a lane
that dies leaves them to be claimed again when it lapses. Nothing is held open while posting.

**Recording.** Each batch's tries are written in one transaction: a ``WebhookAttempt`` per
try (but a first try that succeeded: the delivery's own row says all of it), and the
delivery's new state, only while the lease is still the one claimed (a lane
whose lease lapsed and was taken over writes nothing over its successor). A failed try is
retried after the next delay of ``NOTIFY_WEBHOOK_RETRY_SCHEDULE``; after the last one the
delivery has failed, and if nothing reached the endpoint since that delivery was made, the
endpoint is disabled with the reason, which the admin shows.

At least once: a lane that dies between the endpoint's answer and this record sends that
delivery again after its lease (same ``webhook-id``, which receivers deduplicate on).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from notifications import selectors
from notifications.models import Campaign, Notification
from notifications.webhooks import payloads
from notifications.webhooks.marks import by_mark, fanned, unfanned
from notifications.webhooks.models import (
    CampaignWatch,
    EventType,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookFanOutMark,
)
from notifications.webhooks.transport import Answer

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status
# Events fanned out into deliveries per transaction.
FAN_OUT_BATCH = 500
# How long a claim holds its deliveries before another lane may take them; a lane extends it
# while it works through a slow endpoint's batch (``extend``).
LEASE_SECONDS = 60.0
# What recording a try writes on its delivery.
RECORDED = (
    "status",
    "next_attempt_at",
    "lease_expires_at",
    "finished_at",
    "last_status_code",
    "last_duration_ms",
    "last_response",
    "last_error",
)
# Statuses of a notification that may still change: a campaign with one is not finished.
WAITING = tuple(s for s in Notification.Status.values if s not in selectors.FINAL)


@dataclass
class Claim:
    """One endpoint's deliveries, claimed until ``lease``, each with its event loaded."""

    endpoint: WebhookEndpoint
    lease: datetime
    deliveries: list[WebhookDelivery] = field(default_factory=list)


def fan_out(limit: int = FAN_OUT_BATCH) -> int:
    """Make the deliveries of up to ``limit`` events not fanned out yet (``unfanned``), oldest
    first: one per enabled endpoint that wants the event's type (then, not when it happened),
    due at once. Returns how many events it took. A read first; the write only when there is
    something to do."""
    if by_mark():
        return _fan_out_by_mark(limit)  # its read of the events is the read first
    if not unfanned().exists():
        return 0
    now = timezone.now()
    with transaction.atomic():
        events = list(
            WebhookEvent.objects.filter(fanned_out=False)
            .order_by("id")
            .select_for_update(skip_locked=True)
            .values_list("id", "type")[:limit]
        )
        if not events:
            return 0
        wants: dict[str, list[int]] = {}
        for pk, types in WebhookEndpoint.objects.filter(enabled=True).values_list(
            "pk", "event_types"
        ):
            for kind in types or []:
                wants.setdefault(kind, []).append(pk)
        WebhookDelivery.objects.bulk_create(
            WebhookDelivery(
                event_id=event, endpoint_id=endpoint, next_attempt_at=now, created_at=now
            )
            for event, kind in events
            for endpoint in wants.get(kind, ())
        )
        WebhookEvent.objects.filter(id__in=[pk for pk, _ in events]).update(fanned_out=True)
    return len(events)


def _fan_out_by_mark(limit: int) -> int:
    """SQLite: ``fan_out`` by the mark. The events are read before the write lock is taken
    (the mark's guard in ``_move_mark`` says whether another lane took them meanwhile), and
    the transaction is two statements, with nothing for Python to work out between them: the
    mark moved, and the deliveries made by one ``INSERT … SELECT`` (``_make_deliveries``).
    SQLite has one write lock for the whole database, which delivery's workers want too; a
    lane, niced below them, must hold it as briefly as it can."""
    ids = list(unfanned().order_by("id").values_list("id", flat=True)[:limit])
    if not ids:
        return 0
    insert = _deliveries_sql(ids[0], ids[-1], timezone.now())
    with transaction.atomic():
        if not _move_mark(ids[0], ids[-1]):
            return 0
        _make_deliveries(*insert)
    return len(ids)


def _make_deliveries(sql: str, params: list[Any]) -> None:
    """SQLite: run ``_deliveries_sql``'s statement."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _deliveries_sql(first: int, last: int, now: datetime) -> tuple[str, list[Any]]:
    """SQLite: the statement that makes the deliveries of the events ``first``…``last``, one
    per enabled endpoint that wants the event's type, due at ``now``. Every other column
    gets the model's default (read from a blank delivery, so the two cannot drift apart)."""
    sql, fields = _deliveries_insert()
    blank = WebhookDelivery(next_attempt_at=now, created_at=now)
    values = [f.get_db_prep_save(getattr(blank, f.attname), connection) for f in fields]
    return sql, [*values, first, last]


@functools.cache
def _deliveries_insert() -> tuple[str, tuple[Any, ...]]:
    """``_deliveries_sql``'s text, and the fields whose values it takes (made once)."""
    ops = connection.ops
    fields = tuple(
        f
        for f in WebhookDelivery._meta.concrete_fields
        if not f.primary_key and f.name not in ("event", "endpoint")
    )
    names = ["event_id", "endpoint_id"] + [f.column for f in fields]
    event = ops.quote_name(WebhookEvent._meta.db_table)
    endpoint = ops.quote_name(WebhookEndpoint._meta.db_table)
    sql = (
        f"INSERT INTO {ops.quote_name(WebhookDelivery._meta.db_table)} "
        f"({', '.join(ops.quote_name(n) for n in names)}) "
        f"SELECT e.id, p.id, {', '.join(['%s'] * len(fields))} "
        f"FROM {event} e JOIN {endpoint} p ON p.enabled AND EXISTS "
        "(SELECT 1 FROM json_each(p.event_types) t WHERE t.value = e.type) "
        "WHERE e.id BETWEEN %s AND %s ORDER BY e.id, p.id"
    )
    return sql, fields


def _move_mark(first: int, last: int) -> bool:
    """SQLite: move the mark to ``last`` from below ``first`` (the batch's first event), or
    put its row back there; False, with nothing changed, if another lane took the batch."""
    table = connection.ops.quote_name(WebhookFanOutMark._meta.db_table)
    with connection.cursor() as cursor:  # plain SQL: nothing to compile under the lock
        cursor.execute(
            f"UPDATE {table} SET last_event_id = %s WHERE id = 1 AND last_event_id < %s",
            [last, first],
        )
        if cursor.rowcount:
            return True
    if WebhookFanOutMark.objects.filter(pk=1).exists():
        return False
    WebhookFanOutMark.objects.create(pk=1, last_event_id=last)
    return True


def due(now: datetime | None = None, exclude: Iterable[int] = ()):
    """Pending deliveries whose time has come, not held by a live lease, of enabled
    endpoints (not those of ``exclude``), oldest due first."""
    now = now or timezone.now()
    rows = (
        WebhookDelivery.objects.filter(
            status=Status.PENDING, next_attempt_at__lte=now, endpoint__enabled=True
        )
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .order_by("next_attempt_at", "id")
    )
    exclude = list(exclude)
    return rows.exclude(endpoint_id__in=exclude) if exclude else rows


def next_endpoint(exclude: Iterable[int] = (), now: datetime | None = None) -> int | None:
    """The endpoint whose due delivery has waited longest, among those not in ``exclude``;
    None when none is due (a read: no lock, no transaction)."""
    return due(now, exclude).values_list("endpoint_id", flat=True).first()


def claim(
    limit: Callable[[int], int],
    exclude: Iterable[int] = (),
    now: datetime | None = None,
    endpoint_id: int | None = None,
) -> Claim | None:
    """Claim due deliveries of one endpoint (the one whose delivery has waited longest, among
    those not in ``exclude``), at most ``limit(endpoint id)``; None when none is due.

    ``endpoint_id``: that endpoint, as ``next_endpoint`` read it a moment ago (the lane's
    look before it claims), unless it is in ``exclude``: the claim then doesn't read it
    again (a quarter of the lane's claiming time). If another lane took its due deliveries
    meanwhile, the claim looks again, as without it."""
    now = now or timezone.now()
    lease = now + timedelta(seconds=LEASE_SECONDS)
    exclude = list(exclude)
    hinted = endpoint_id is not None and endpoint_id not in exclude
    if not hinted:
        endpoint_id = next_endpoint(exclude, now)
    if endpoint_id is None:
        return None
    if by_mark() and connection.features.can_return_rows_from_bulk_insert:
        ids = _lease(endpoint_id, limit(endpoint_id), now, lease)
    else:
        ids = _lease_locked(endpoint_id, limit(endpoint_id), now, lease)
    if not ids:
        return claim(limit, exclude, now) if hinted else None
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    deliveries = list(
        WebhookDelivery.objects.filter(id__in=ids)
        .select_related("event")
        .order_by("next_attempt_at", "id")
    )
    if endpoint is None or not deliveries:
        return None
    for delivery in deliveries:  # one endpoint, read once for the batch
        delivery.endpoint = endpoint
    return Claim(endpoint=endpoint, lease=lease, deliveries=deliveries)


def _lease_locked(endpoint_id: int, limit: int, now: datetime, lease: datetime) -> list[int]:
    """PostgreSQL (and SQLite before 3.35): lease up to ``limit`` of the endpoint's due
    deliveries in one short transaction, the rows picked with ``FOR UPDATE SKIP LOCKED`` so
    that two lanes never take the same one."""
    with transaction.atomic():
        ids = list(
            due(now)
            .filter(endpoint_id=endpoint_id)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            WebhookDelivery.objects.filter(id__in=ids).update(
                lease_expires_at=lease, attempts=F("attempts") + 1
            )
    return ids


def _lease(endpoint_id: int, limit: int, now: datetime, lease: datetime) -> list[int]:
    """SQLite (3.35 or later): lease up to ``limit`` of the endpoint's due deliveries in one
    ``UPDATE … RETURNING`` in autocommit, the write lock held for that statement alone (a
    claim's transaction held it over three, Python working out each). The rows are picked
    by ``due`` in the statement itself, so two lanes never take the same one."""
    ops = connection.ops
    table = ops.quote_name(WebhookDelivery._meta.db_table)
    among, params = (
        due(now).filter(endpoint_id=endpoint_id).values("id")[:limit].query.sql_with_params()
    )
    lease_column, attempts = ops.quote_name("lease_expires_at"), ops.quote_name("attempts")
    held = WebhookDelivery._meta.get_field("lease_expires_at").get_db_prep_save(lease, connection)
    sql = (
        f"UPDATE {table} SET {lease_column} = %s, {attempts} = {attempts} + 1 "
        f"WHERE id IN ({among}) RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [held, *params])
        return [row[0] for row in cursor.fetchall()]


def extend(batch: Claim) -> bool:
    """Hold ``batch``'s deliveries for another ``LEASE_SECONDS``; False (and nothing changed)
    if the lease lapsed meanwhile and another lane took one of them."""
    lease = timezone.now() + timedelta(seconds=LEASE_SECONDS)
    ids = [d.pk for d in batch.deliveries]
    with transaction.atomic():
        moved = WebhookDelivery.objects.filter(
            id__in=ids, status=Status.PENDING, lease_expires_at=batch.lease
        ).update(lease_expires_at=lease)
        if moved != len(ids):
            transaction.set_rollback(True)
            return False
    batch.lease = lease
    return True


def next_try(tries: int, now: datetime) -> datetime | None:
    """When to try again after ``tries`` tries failed; None after the last."""
    schedule = settings.NOTIFY_WEBHOOK_RETRY_SCHEDULE
    if tries > len(schedule):
        return None
    return now + timedelta(seconds=schedule[tries - 1])


def record(
    batch: Claim,
    tried: Sequence[tuple[WebhookDelivery, datetime, Answer]],
    untried: Sequence[WebhookDelivery] = (),
) -> list[WebhookDelivery]:
    """Write ``tried`` (each delivery with when its try started and what it came to) and
    give ``untried`` back (the lane stopped before them). Returns the deliveries that failed
    for good. One transaction; rows whose lease is no longer ``batch.lease`` are left alone.

    Everything is worked out before the transaction, so the write lock (SQLite has one for
    the whole database, which delivery's workers want too) is held only for the statements.
    A batch whose every try was its delivery's first and succeeded — nearly all of them —
    is one UPDATE per row, each guarded by the lease; otherwise the rows still ours are read
    first, and only they get their tries' history, are given back or given up."""
    now = timezone.now()
    written: list[WebhookDelivery] = []
    failed: list[WebhookDelivery] = []
    history: list[WebhookAttempt] = []
    for delivery, started, answer in tried:
        delivery.lease_expires_at = None
        delivery.last_status_code = answer.status_code
        delivery.last_duration_ms = answer.duration_ms
        delivery.last_response = answer.response
        delivery.last_error = answer.error
        if answer.ok:
            delivery.status, delivery.finished_at = Status.SUCCEEDED, now
            delivery.next_attempt_at = None
        elif (retry := next_try(delivery.attempts, now)) is not None:
            delivery.next_attempt_at = retry
        else:
            delivery.status, delivery.finished_at = Status.FAILED, now
            delivery.next_attempt_at = None
            failed.append(delivery)
        written.append(delivery)
        # A delivery taken at its first try is its own record (status, time, answer); a
        # history of tries is kept once there is more than one.
        if not (answer.ok and delivery.attempts == 1):
            history.append(
                WebhookAttempt(
                    delivery=delivery,
                    number=delivery.attempts,
                    started_at=started,
                    outcome=answer.outcome,
                    status_code=answer.status_code,
                    duration_ms=answer.duration_ms,
                    response=answer.response,
                    error=answer.error,
                )
            )
    rows = _rows(written, batch.lease)
    with transaction.atomic():
        if history or untried:
            ours = set(
                WebhookDelivery.objects.filter(
                    id__in=[d.pk for d in written] + [d.pk for d in untried],
                    lease_expires_at=batch.lease,
                )
                .select_for_update()
                .values_list("id", flat=True)
            )
            WebhookAttempt.objects.bulk_create(a for a in history if a.delivery_id in ours)
            back = [d.pk for d in untried if d.pk in ours]
            if back:
                WebhookDelivery.objects.filter(pk__in=back).update(
                    lease_expires_at=None, attempts=F("attempts") - 1
                )
            failed = [d for d in failed if d.pk in ours]
        _write(rows)
        for delivery in failed:
            _maybe_disable(delivery, now)
    return failed


def _rows(deliveries: Sequence[WebhookDelivery], lease: datetime) -> list[list[Any]]:
    """``_write``'s parameters: each delivery's ``RECORDED`` values, its id and the lease."""
    fields = _recorded()
    held = WebhookDelivery._meta.get_field("lease_expires_at").get_db_prep_save(lease, connection)
    return [
        [f.get_db_prep_save(getattr(d, f.attname), connection) for f in fields] + [d.pk, held]
        for d in deliveries
    ]


@functools.cache
def _recorded() -> list[Any]:
    return [WebhookDelivery._meta.get_field(name) for name in RECORDED]


def _write(rows: list[list[Any]]) -> None:
    """UPDATE each delivery's ``RECORDED`` fields (``_rows``) where it still holds the lease:
    one statement run for every row (``executemany``: prepared once on SQLite, pipelined on
    PostgreSQL). ``bulk_update``'s CASE per field costs far more at a batch's size."""
    if not rows:
        return
    ops = connection.ops
    assignments = ", ".join(f"{ops.quote_name(f.column)} = %s" for f in _recorded())
    table = ops.quote_name(WebhookDelivery._meta.db_table)
    lease = ops.quote_name("lease_expires_at")
    sql = f"UPDATE {table} SET {assignments} WHERE id = %s AND {lease} = %s"
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _maybe_disable(delivery: WebhookDelivery, now: datetime) -> None:
    """Disable the endpoint of ``delivery`` (which has just failed for good) when nothing
    reached it since the delivery was made: it is down, not choking on one event."""
    got_through = WebhookDelivery.objects.filter(
        endpoint_id=delivery.endpoint_id,
        status=Status.SUCCEEDED,
        finished_at__gte=delivery.created_at,
    ).exists()
    if got_through:
        return
    last = delivery.history.order_by("-number", "-id").first()
    reason = (
        f"Disabled automatically on {now:%Y-%m-%d %H:%M} UTC: delivery #{delivery.pk} "
        f"({delivery.event.type}, event {delivery.event_id}) failed {delivery.attempts} "
        f"times from {delivery.created_at:%Y-%m-%d %H:%M} UTC, and no other delivery "
        "reached the endpoint meanwhile."
    )
    if last is not None and last.error:
        reason += f" The last try: {last.error}"
    disabled = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, enabled=True).update(
        enabled=False, disabled_at=now, disabled_reason=reason, updated_at=now
    )
    if disabled:
        logger.warning("webhook endpoint %s disabled: %s", delivery.endpoint_id, reason)


# --- campaign.finished ----------------------------------------------------------------------


def finish_campaigns(limit: int = 100) -> int:
    """Send ``campaign.finished`` for each watched campaign that has ended: created
    (``ready``) with no notification left waiting. Forget campaigns that were not created or
    were cancelled. Returns how many events were written."""
    written = 0
    for campaign_id in CampaignWatch.objects.order_by("created_at").values_list(
        "campaign_id", flat=True
    )[:limit]:
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is not None and campaign.state == Campaign.State.CREATING:
            continue
        ended = campaign is not None and campaign.state == Campaign.State.READY
        waiting = Notification.objects.filter(campaign_id=campaign_id, status__in=WAITING)
        if ended and waiting.exists():
            continue
        try:
            with transaction.atomic():
                # The watch row is the claim: of two lanes, one deletes it.
                if not CampaignWatch.objects.filter(campaign_id=campaign_id).delete()[0]:
                    continue
                if ended and campaign_finished(campaign) is not None:
                    written += 1
        except IntegrityError:
            continue  # another lane wrote it first
    return written


def campaign_finished(campaign: Campaign) -> WebhookEvent | None:
    """Write ``campaign.finished`` for ``campaign``, for ``fan_out`` to deliver (none when no
    endpoint wants it). Raises ``IntegrityError`` if it was written before."""
    wanted = any(
        EventType.CAMPAIGN_FINISHED in (types or [])
        for types in WebhookEndpoint.objects.filter(enabled=True).values_list(
            "event_types", flat=True
        )
    )
    if not wanted:
        return None
    now = timezone.now()
    counts = dict(
        Notification.objects.filter(campaign=campaign)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    data = {
        "id": campaign.pk,
        "name": campaign.name,
        "state": campaign.state,
        "created_at": payloads.utc_text(campaign.created_at),
        "created_all_at": payloads.utc_text(campaign.created_all_at),
        "finished_at": payloads.utc_text(now),
        "recipients": campaign.recipients,
        "skipped": campaign.skipped,
        "notifications": {status: counts.get(status, 0) for status in selectors.FINAL},
    }
    return WebhookEvent.objects.create(
        type=EventType.CAMPAIGN_FINISHED,
        campaign_id=campaign.pk,
        data=data,
        created_at=now,
        fanned_out=by_mark(),  # on SQLite, as the trigger's: out of the partial index
    )


# --- the prune ---------------------------------------------------------------


def first_id_since(moment: datetime) -> int:
    """The id of the first event made at ``moment`` or later (one past the last if none): a
    binary search over ids, which grow with time (events have no index on their time)."""
    rows = WebhookEvent.objects.order_by("id")
    last = rows.values_list("id", flat=True).last()
    low = rows.values_list("id", flat=True).first()
    if low is None:
        return 0
    high = last + 1
    while low < high:
        middle = (low + high) // 2
        found = rows.filter(id__gte=middle).values_list("id", "created_at").first()
        if found is None or found[1] >= moment:
            high = middle if found is None else min(middle, found[0])
        else:
            low = found[0] + 1
    return low


def prune(
    now: datetime | None = None, batch_size: int | None = None, seconds: float = 300.0
) -> dict[str, int]:
    """Delete events made more than ``NOTIFY_WEBHOOK_EVENT_DAYS`` ago whose every delivery
    ended (succeeded or failed) as long ago, with their deliveries and tries, in batches;
    first give up deliveries that waited that long for a disabled endpoint. Returns counts."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.NOTIFY_WEBHOOK_EVENT_DAYS)
    size = batch_size or settings.NOTIFY_RETENTION_BATCH
    deadline = time.monotonic() + seconds
    abandoned = WebhookDelivery.objects.filter(
        status=Status.PENDING, endpoint__enabled=False, created_at__lt=cutoff
    ).update(
        status=Status.FAILED,
        finished_at=now,
        next_attempt_at=None,
        last_error=f"given up: its endpoint was disabled for over "
        f"{settings.NOTIFY_WEBHOOK_EVENT_DAYS} days",
    )
    busy = WebhookDelivery.objects.filter(event=OuterRef("pk")).filter(
        Q(status=Status.PENDING) | Q(finished_at__gte=cutoff)
    )
    old = fanned().filter(id__lt=first_id_since(cutoff)).exclude(Exists(busy))
    events = deliveries = 0
    while time.monotonic() < deadline:
        with transaction.atomic():
            ids = list(
                old.order_by("created_at", "id")
                .select_for_update(skip_locked=True)
                .values_list("id", flat=True)[:size]
            )
            if not ids:
                break
            _, deleted = WebhookEvent.objects.filter(id__in=ids).delete()
        events += deleted.get(WebhookEvent._meta.label, 0)
        deliveries += deleted.get(WebhookDelivery._meta.label, 0)
    gone = CampaignWatch.objects.filter(created_at__lt=cutoff).delete()[0]
    return {"events": events, "deliveries": deliveries, "abandoned": abandoned, "watches": gone}
