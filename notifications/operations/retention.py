"""Retention: notifications nothing has touched for ``NOTIFY_RETENTION_DAYS`` are deleted,
with their attempts and SMS receipts, and so are the skipped-recipient rows of campaigns that
ended as long ago. Hourly (``operations.tasks.prune_old``) and by ``manage.py prune_old``,
which can first say what it would delete (``plan``).

What goes (``prunable``): a notification in a final status (``selectors.FINAL``) every time of
which is before the cutoff — created, queued (a resend queues it again), due (``send_at``),
sent, its lease, its expiry (when it ended expired), and each attempt's start and receipt —
and which belongs to no running campaign (one still being created, or with a notification
still waiting). So one created 100 days ago and delivered yesterday is kept 90 days from
yesterday. A cancelled notification has no time of its own: it goes by the others. Campaign
rows stay (the campaign list is history); their skipped recipients go with the campaign's last
notification, once the campaign too is older than the cutoff.

Suppressed email addresses and the soft bounces that count toward one are the suppression
app's own: an active suppression stays until an operator lifts it (it is what keeps mail from
a dead address), a lifted one goes ``NOTIFY_RETENTION_DAYS`` after the lift, a soft bounce
after ``NOTIFY_SOFT_BOUNCE_DAYS`` (``notifications.suppression.services.prune``, hourly).

The cutoff is ``NOTIFY_RETENTION_DAYS`` ago, but never later than the days the dashboard's
rollup has covered (``rollup.covered_until``). A run moves the ``RetentionWatermark`` to its
cutoff before it deletes anything, and the rollup keeps its days before the watermark as they
are: the dashboard shows the same numbers after the rows are gone.

How: batches of ``NOTIFY_RETENTION_BATCH`` notifications, oldest first, each its own short
transaction. One statement, holding every condition, picks and locks the batch's rows
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL: a row another transaction holds is left for the
next run, and nothing waits; on SQLite the write lock taken at BEGIN holds everything still);
then Django's delete collector removes them by id, children first (SMS receipts, attempts,
and whatever else comes to refer to a notification: ``CASCADE`` deletes it, ``SET_NULL``
unlinks it), selecting only ids. After each batch the run rests ``REST`` times as long as the
batch took (longer when the database is busy), so sends keep their pace; it stops after
``NOTIFY_RETENTION_SECONDS`` and the next run goes on. On PostgreSQL one run at a time across
every host (a session advisory lock); another finds it taken and returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from notifications import rollup, selectors
from notifications.models import Campaign, CampaignSkip, DeliveryAttempt, Notification, SmsPart
from notifications.operations.models import RetentionWatermark

logger = logging.getLogger(__name__)

Status = Notification.Status
LOCK_KEY = 0x7072756E  # pg_advisory lock id of a prune run ("prun")
# Rest after each batch, as a multiple of its time: a run works a third of the time. At 1, a
# campaign sent meanwhile lost 10 % of its rate on two busy cores (``make bench``, retention).
REST = 2.0
# Statuses a worker or the sweeper may still change: every one that is not final.
WAITING = tuple(status for status in Status.values if status not in selectors.FINAL)
# The times of a notification that say something happened to it (besides created_at).
TOUCHED = ("queued_at", "send_at", "sent_at", "lease_expires_at")


@dataclass
class PruneResult:
    """What one run deleted (or, planned, would delete), and whether it finished."""

    cutoff: datetime
    notifications: int = 0
    attempts: int = 0
    sms_parts: int = 0
    campaign_skips: int = 0
    batches: int = 0
    # The rollup has not covered the days up to NOTIFY_RETENTION_DAYS ago: the cutoff waits.
    held_back: bool = False
    done: bool = False  # nothing prunable left (False: stopped at its time budget)
    busy: bool = False  # another run holds the lock: this one did nothing

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "cutoff": self.cutoff.isoformat()}


def _begin(now: datetime | None) -> PruneResult:
    """A run's result so far: its cutoff, before which untouched rows may go —
    ``NOTIFY_RETENTION_DAYS`` ago, or earlier while the rollup has not covered the days in
    between."""
    now = now or timezone.now()
    window = now - timedelta(days=settings.NOTIFY_RETENTION_DAYS)
    covered = rollup.covered_until(now)
    return PruneResult(cutoff=min(window, covered), held_back=covered < window)


def _running(campaigns: QuerySet[Campaign]) -> QuerySet[Campaign]:
    """Those of ``campaigns`` still running: being created, or with a notification waiting
    (one index probe per waiting status on (campaign, status))."""
    waiting = Notification.objects.filter(campaign=OuterRef("pk"), status__in=WAITING)
    return campaigns.filter(Q(state=Campaign.State.CREATING) | Exists(waiting))


def prunable(before: datetime) -> QuerySet[Notification]:
    """Final notifications nothing has touched since before ``before``, in no running
    campaign (see the module's docstring)."""
    untouched = Q(created_at__lt=before)
    for field in TOUCHED:
        untouched &= Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__lt": before})
    recent_attempts = DeliveryAttempt.objects.filter(notification=OuterRef("pk")).filter(
        Q(started_at__gte=before) | Q(receipt_at__gte=before)
    )
    running = _running(Campaign.objects.filter(pk=OuterRef("campaign_id")))
    return (
        Notification.objects.filter(untouched, status__in=selectors.FINAL)
        .exclude(status=Status.EXPIRED, expires_at__gte=before)
        .exclude(Exists(recent_attempts))
        .exclude(Exists(running))
    )


def ended_campaign_skips(
    before: datetime, going: QuerySet[Notification] | None = None
) -> QuerySet[CampaignSkip]:
    """Skipped recipients of campaigns that ended before ``before`` and have no notification
    left (but those of ``going``)."""
    left = Notification.objects.filter(campaign=OuterRef("pk"))
    if going is not None:
        left = left.exclude(pk__in=going.values("pk"))
    ended = (
        Campaign.objects.filter(created_at__lt=before, updated_at__lt=before)
        .exclude(state=Campaign.State.CREATING)
        .exclude(Exists(left))
    )
    return CampaignSkip.objects.filter(campaign__in=ended)


def plan(now: datetime | None = None) -> PruneResult:
    """What a run now would delete, counted (a scan of every old row: for operators)."""
    result = _begin(now)
    notifications = prunable(result.cutoff)
    result.notifications = notifications.count()
    result.attempts = DeliveryAttempt.objects.filter(notification__in=notifications).count()
    result.sms_parts = SmsPart.objects.filter(attempt__notification__in=notifications).count()
    result.campaign_skips = ended_campaign_skips(result.cutoff, going=notifications).count()
    return result


def prune(
    *,
    now: datetime | None = None,
    batch_size: int | None = None,
    seconds: float | None = None,
    progress: Callable[[PruneResult], None] | None = None,
) -> PruneResult:
    """Delete what has outlived retention, ``batch_size`` notifications (default
    ``NOTIFY_RETENTION_BATCH``) per transaction, for about ``seconds`` (default
    ``NOTIFY_RETENTION_SECONDS``; at least one batch). ``progress`` is called with the totals
    after each batch commits. Raises what the database raises (a batch's transaction is
    rolled back whole)."""
    size = batch_size or settings.NOTIFY_RETENTION_BATCH
    budget = settings.NOTIFY_RETENTION_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + budget
    result = _begin(now)
    with _one_run_at_a_time() as ours:
        if not ours:
            result.busy = True
            return result
        _move_watermark(result.cutoff)
        result.done = _run(result, size, deadline, progress)
    if result.batches:
        logger.info("retention: %s", result.as_dict())
    return result


def _run(
    result: PruneResult,
    size: int,
    deadline: float,
    progress: Callable[[PruneResult], None] | None,
) -> bool:
    """The batches of one run, until none is left (True) or the deadline passed."""
    for batches in (_notification_batches, _skip_batches):
        for took in batches(result, size):
            result.batches += 1
            if progress:
                progress(result)
            if time.monotonic() >= deadline:
                return False
            time.sleep(REST * took)  # the workers' turn
    return True


@contextmanager
def _one_run_at_a_time() -> Iterator[bool]:
    """On PostgreSQL, this session's lock on pruning (True: ours); consumers on several hosts
    each run the hourly task. SQLite's write lock already puts batches one after another."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
        ours = bool(cursor.fetchone()[0])
    try:
        yield ours
    finally:
        if ours:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
            except DatabaseError:
                pass  # the connection broke, and its session's lock went with it


def _move_watermark(before: datetime) -> None:
    """Record, before deleting anything, that rows before ``before`` may go (never earlier
    than it was)."""
    with transaction.atomic():
        moved = RetentionWatermark.objects.filter(pk=1, pruned_before__lt=before).update(
            pruned_before=before
        )
        if not moved:
            RetentionWatermark.objects.get_or_create(pk=1, defaults={"pruned_before": before})


def _notification_batches(result: PruneResult, size: int) -> Iterator[float]:
    """Delete prunable notifications (oldest first) and their children, one transaction per
    batch; yields each batch's seconds. Goes on after the last row it took, so the rows it
    keeps are read once per run."""
    after: tuple[datetime, int] | None = None
    while True:
        began = time.monotonic()
        with transaction.atomic():
            rows = prunable(result.cutoff)
            if after is not None:
                rows = rows.filter(created_at__gte=after[0]).exclude(
                    created_at=after[0], pk__lte=after[1]
                )
            picked = list(
                rows.order_by("created_at", "pk")
                .select_for_update(skip_locked=True)
                .values_list("created_at", "pk")[:size]
            )
            if not picked:
                return
            _total, deleted = (
                Notification.objects.filter(pk__in=[pk for _, pk in picked]).only("pk").delete()
            )
        result.notifications += deleted.get(Notification._meta.label, 0)
        result.attempts += deleted.get(DeliveryAttempt._meta.label, 0)
        result.sms_parts += deleted.get(SmsPart._meta.label, 0)
        after = picked[-1]
        yield time.monotonic() - began


def _skip_batches(result: PruneResult, size: int) -> Iterator[float]:
    """Delete the skipped recipients of ended campaigns, one transaction per batch."""
    while True:
        began = time.monotonic()
        with transaction.atomic():
            picked = list(
                ended_campaign_skips(result.cutoff)
                .order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:size]
            )
            if not picked:
                return
            result.campaign_skips += CampaignSkip.objects.filter(pk__in=picked).delete()[0]
        yield time.monotonic() - began
