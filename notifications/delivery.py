"""Delivering notifications: claim → channel chain → record → a decision.

This module decides; ``tasks`` enqueues. ``claim(ids)`` takes queued, due notifications with
one conditional UPDATE (whoever changes a row owns its send until its lease expires) and
returns a ``Job`` for each. ``advance(job)`` walks the job's channel chain until it is done,
and returns either a ``Decision`` (sent / queued again at a time / failed / …) or a ``Wait``:
the next part holds a pacing slot that starts soon, and the task layer calls ``advance``
again at that time, holding no worker meanwhile.

The rules the chain keeps (docs/reliability.md tells them to operators):

- Every claimed notification ends its round recorded, whatever a sender raises. An
  unexpected exception is recorded as its attempt's error and treated as transient (as
  ambiguous on a paid transport once the provider was called).
- Everything that can fail is computed before a provider is called (``Sender.prepare``).
- The round cap holds at claim and at sweep; a lease can never loop.
- A split message resumes from its first part not accepted, and never falls through to
  another channel once a part went out.
- A paid transport is never sent twice by our doing: after an ambiguous outcome (the
  provider may have taken it) no other gate, transport or later round sends that SMS.
- No transaction is open while a provider is called. Every write after the claim is
  conditional on the claim's lease; long sends renew it between parts.

The only window for a duplicate: a provider accepted a message and the worker died before the
write that records it (or the database stayed unreachable for longer than
``DB_RETRY_SECONDS``). The sweeper re-queues the row when its lease expires, recording the
lost round as a ``lease`` attempt.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    models,
    transaction,
)
from django.db.models import F, Q
from django.utils import timezone

from notifications import pacing, receipts
from notifications.channels import channel_closed_reason, channel_order, senders_for
from notifications.models import DeliveryAttempt, Notification, UserContact
from notifications.senders.base import DeliveryError, PartResult, Prepared, Sender, SkipChannel
from notifications.senders.sms import DailyLimitReached, next_day_start

logger = logging.getLogger(__name__)

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome

# How long a worker that lost the database mid-delivery (a restart, a failover) keeps
# reconnecting to record what it did, before leaving the row to the sweeper.
DB_RETRY_SECONDS = 30.0
# A pacing slot this close is waited for in the worker (a short sleep, under half of one
# Telegram call) and the part sent at its slot; a later one waits in the lane
# (``notifications.tasks``) and the worker goes on. Handing every slot a few milliseconds
# ahead to the lane made the workers book far ahead of what the lane could send.
SLOT_TOLERANCE = 0.02
# A send that comes later than this after its slot (a busy machine) books a new one instead:
# late sends bunch up, and a provider counting over a sliding second would see more than the
# rate. The bound is half an interval of the pace (at 25/s: 20 ms, so any second holds at
# most about 26 sends), at most 100 ms.
LATE_SLOT_TOLERANCE = 0.1
# ... and at least 10 ms: at a fast pace (1,000/s), half an interval is shorter than the
# scheduling jitter of a busy process; 10 ms late adds at most 1 % to any second.
LATE_SLOT_FLOOR = 0.01
LATE_SLOT_REBOOKS = 5
CLAIMABLE = (Status.QUEUED, Status.SCHEDULED)

T = TypeVar("T")


def retrying_db(write: Callable[[], T]) -> T:
    """``write()``, run again on a fresh connection while the database is unreachable.

    Raises the last ``OperationalError``/``InterfaceError`` after ``DB_RETRY_SECONDS``.
    """
    deadline = time.monotonic() + DB_RETRY_SECONDS
    delay = 0.25
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError) as err:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("database unavailable (%s); retrying in %.2fs", err, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 4.0)


def retry_delay(round_number: int) -> float:
    """Exponential backoff with jitter: base·2^(round-1), capped, then 50–100% of that."""
    delay = settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** max(round_number - 1, 0)
    delay = min(delay, settings.NOTIFY_RETRY_MAX_SECONDS)
    return delay * random.uniform(0.5, 1.0)


# --- decisions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """How a round ended: the notification's new status, and when to ring for it again."""

    notification_id: int
    status: str | None  # None: the row is no longer ours (lease lost) or no longer exists
    due: datetime | None = None


@dataclass
class Wait:
    """Call ``advance(job)`` again at ``at`` (Unix time): a pacing slot is booked for then."""

    at: float
    job: Job


# --- the state of one run, kept on the row ---------------------------------------------------


@dataclass
class Progress:
    """``Notification.progress``: what the current run (since the last Send/Resend) knows.

    - ``blocked``: channel → why it is not tried again in this run ("permanent", or
      "unknown": a paid send whose outcome is unknown);
    - ``partial``: a split message partly accepted: its channel, transport, the provider's
      ids of the parts accepted, how many parts in all, and their cost;
    - ``resume``: after a deferral (pacing, rate limit), the chain index to go on from and
      whether earlier channels of the round had transient errors.
    """

    blocked: dict[str, str] = field(default_factory=dict)
    partial: dict[str, Any] | None = None
    resume: dict[str, Any] | None = None

    @classmethod
    def load(cls, value: Any) -> Progress:
        value = value if isinstance(value, dict) else {}
        blocked = value.get("blocked")
        return cls(
            blocked=dict(blocked) if isinstance(blocked, dict) else {},
            partial=value.get("partial") if isinstance(value.get("partial"), dict) else None,
            resume=value.get("resume") if isinstance(value.get("resume"), dict) else None,
        )

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.blocked:
            out["blocked"] = self.blocked
        if self.partial:
            out["partial"] = self.partial
        if self.resume:
            out["resume"] = self.resume
        return out


# --- a claimed notification ------------------------------------------------------------------


@dataclass
class Job:
    """One claimed notification in one round: where its chain stands and what it recorded."""

    notification: Notification
    contact: UserContact
    lease: datetime
    progress: Progress
    order: list[str]
    channel_index: int = 0
    senders: list[Sender] | None = None
    transport_index: int = 0
    prepared: Prepared | None = None
    part: int = 0
    accepted: list[str] = field(default_factory=list)
    cost: Decimal | None = None
    paces_held: int = 0
    slot_at: float | None = None  # the latest slot held for the next part (Unix time)
    rebooks: int = 0
    started_at: datetime | None = None
    began: float = 0.0
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    success: DeliveryAttempt | None = None
    transient: bool = False  # some channel may succeed in a later round
    channel_transient: bool = False
    retry_after: float | None = None  # rate limited: requeue after this, not a round
    defer_until: float | None = None  # pacing slot beyond the horizon (Unix time)
    daily_limit: bool = False  # SMS waits for tomorrow's count
    stuck: str = ""  # a partly sent message that can't be completed
    lost: bool = False  # the lease was taken over, or the row is gone

    @property
    def round(self) -> int:
        return self.notification.rounds

    def record(
        self,
        channel: str,
        transport: str,
        outcome: str,
        *,
        error: str = "",
        started_at: datetime | None = None,
        duration_ms: int = 0,
        provider_message_id: str = "",
        cost: Decimal | None = None,
        segments: int | None = None,
    ) -> DeliveryAttempt:
        attempt = DeliveryAttempt(
            notification_id=self.notification.pk,
            round=self.round,
            channel=channel,
            transport=transport,
            outcome=outcome,
            error=error,
            provider_message_id=provider_message_id[:255],
            started_at=started_at or timezone.now(),
            duration_ms=duration_ms,
            cost=cost,
            segments=segments,
        )
        self.attempts.append(attempt)
        return attempt

    def summary(self) -> str:
        return "; ".join(
            f"{a.transport}: {a.error}" for a in self.attempts if a.outcome != Outcome.SUCCESS
        )


# --- claim ------------------------------------------------------------------------------------


def _claim_ids(ids: list[int], lease: datetime, now: datetime) -> list[int]:
    """The ids of ``ids`` this call claimed: one conditional UPDATE … RETURNING."""
    if not connection.features.can_return_columns_from_insert:  # SQLite before 3.35
        claimed = []
        for pk in ids:
            if (
                _claimable(Notification.objects.filter(pk=pk), now).update(
                    status=Status.SENDING, lease_expires_at=lease, rounds=F("rounds") + 1
                )
                == 1
            ):
                claimed.append(pk)
        return claimed
    table = connection.ops.quote_name(Notification._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, lease_expires_at = %s, rounds = rounds + 1 "
            f"WHERE id IN ({marks}) AND status IN (%s, %s) "
            f"AND (next_attempt_at IS NULL OR next_attempt_at <= %s) "
            f"AND (expires_at IS NULL OR expires_at > %s) AND rounds < %s RETURNING id",
            [
                Status.SENDING,
                adapt(lease),
                *ids,
                *CLAIMABLE,
                adapt(now),
                adapt(now),
                settings.NOTIFY_MAX_ROUNDS,
            ],
        )
        return [row[0] for row in cursor.fetchall()]


def _claimable(queryset, now: datetime):
    return (
        queryset.filter(status__in=CLAIMABLE, rounds__lt=settings.NOTIFY_MAX_ROUNDS)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    )


def end_unclaimable(ids: list[int], now: datetime) -> None:
    """Rows of ``ids`` that can never be claimed end now: expired ones ``expired``, those
    with no rounds left ``failed`` (so nothing waits, or loops, forever)."""
    waiting = Notification.objects.filter(pk__in=ids, status__in=CLAIMABLE)
    waiting.filter(expires_at__lte=now).update(
        status=Status.EXPIRED,
        next_attempt_at=None,
        last_error="expired before it could be delivered (its expires_at passed)",
    )
    waiting.filter(rounds__gte=settings.NOTIFY_MAX_ROUNDS).update(
        status=Status.FAILED,
        next_attempt_at=None,
        last_error=f"no rounds left: {settings.NOTIFY_MAX_ROUNDS} used (NOTIFY_MAX_ROUNDS)",
    )


def claim(ids: list[int]) -> list[Job]:
    """Take ownership of the queued, due notifications among ``ids``: a ``Job`` for each one
    this call won (others are someone else's, not due, or done)."""
    if not ids:
        return []
    now = timezone.now()
    lease = now + timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)
    claimed = _claim_ids(list(ids), lease, now)
    if len(claimed) < len(ids):
        won = set(claimed)
        retrying_db(lambda: end_unclaimable([pk for pk in ids if pk not in won], now))
    if not claimed:
        return []
    # Ours now: ride out a database restart rather than leave them to the sweeper. One
    # query loads each with its user and the user's contact.
    notifications = retrying_db(
        lambda: list(Notification.objects.filter(pk__in=claimed).select_related("user__contact"))
    )
    order = {pk: n for n, pk in enumerate(claimed)}
    jobs = []
    for notification in sorted(notifications, key=lambda n: order[n.pk]):
        try:
            contact = notification.user.contact
        except UserContact.DoesNotExist:  # a user made before contacts existed
            try:
                contact, _ = UserContact.objects.get_or_create(user_id=notification.user_id)
            except IntegrityError:  # the user was deleted meanwhile
                continue
            contact.user = notification.user
        notification.lease_expires_at = lease
        progress = Progress.load(notification.progress)
        job = Job(
            notification=notification,
            contact=contact,
            lease=lease,
            progress=progress,
            order=channel_order(notification.channels),
        )
        if progress.resume:
            job.channel_index = int(progress.resume.get("channel", 0))
            job.transient = bool(progress.resume.get("transient"))
            progress.resume = None
        jobs.append(job)
    return jobs


# --- the chain --------------------------------------------------------------------------------


def _usable(job: Job, channel: str) -> tuple[list[Sender], str, str]:
    """The configured senders of ``channel`` for this job, or none, the outcome and why."""
    blocked = job.progress.blocked.get(channel)
    if blocked == "unknown":
        return (
            [],
            Outcome.SKIPPED,
            (
                "an earlier send in this run may have been accepted (outcome unknown); "
                "not sent again so as not to pay twice"
            ),
        )
    if blocked:
        return [], Outcome.SKIPPED, "failed permanently earlier in this run"
    partial = job.progress.partial
    if partial and partial.get("channel") != channel:
        return (
            [],
            Outcome.SKIPPED,
            (
                f"the message is partly delivered via {partial.get('channel')}; "
                "it is completed there, not sent again here"
            ),
        )
    senders = [s for s in senders_for(channel) if s.is_configured()]
    if partial:
        senders = [s for s in senders if s.transport == partial.get("transport")]
    if not senders:
        return [], Outcome.SKIPPED, "not configured"
    if getattr(job.contact, f"{channel}_opt_out", False):
        return [], Outcome.SKIPPED, "opted out"
    try:
        senders[0].address(job.contact)
    except SkipChannel as skip:
        return [], Outcome.SKIPPED, str(skip)
    closed = channel_closed_reason(channel)
    if closed and not partial:
        job.daily_limit = True
        return [], Outcome.DEFERRED, closed
    return senders, "", ""


def _elapsed_ms(job: Job) -> int:
    return int((time.monotonic() - job.began) * 1000)


def _leave_transport(job: Job) -> None:
    job.prepared = None
    job.part = 0
    job.accepted = []
    job.cost = None
    job.paces_held = 0
    job.transport_index += 1


def _leave_channel(job: Job) -> None:
    if job.channel_transient:
        job.transient = True
    job.channel_transient = False
    job.senders = None
    job.transport_index = 0
    job.prepared = None
    job.channel_index += 1


def _outcome_of(err: DeliveryError) -> str:
    if err.rate_limited:
        return Outcome.RATE_LIMITED
    if err.ambiguous:
        return Outcome.AMBIGUOUS
    if err.permanent:
        return Outcome.PERMANENT
    return Outcome.TRANSIENT


def call_budget() -> float:
    """The longest one ``send_part`` may take: a few calls of the longest provider timeout
    (a reconnect, a migrated chat, a full SMPP window)."""
    longest = max(settings.NOTIFY_HTTP_TIMEOUT, settings.EMAIL_TIMEOUT, settings.SMPP_TIMEOUT)
    return 3 * longest + 5


def _renew_lease(job: Job, *, until: float | None = None, save_progress: bool = False) -> bool:
    """Make the lease outlast a send starting at ``until`` (Unix time; now by default),
    conditional on the current lease; optionally writing ``progress``. False: it was lost.

    So a send never outlives its lease and can't be claimed again while it still runs.
    """
    start = max(until or 0.0, time.time())
    needed = timezone.now() + timedelta(seconds=start - time.time() + call_budget())
    if job.lease >= needed and not save_progress:
        return True
    lease = max(needed, timezone.now() + timedelta(seconds=settings.NOTIFY_LEASE_SECONDS))
    changes: dict[str, Any] = {"lease_expires_at": lease}
    if save_progress:
        changes["progress"] = job.progress.dump()
    updated = retrying_db(
        lambda: Notification.objects.filter(
            pk=job.notification.pk, status=Status.SENDING, lease_expires_at=job.lease
        ).update(**changes)
    )
    if not updated:
        job.lost = True
        return False
    job.lease = lease
    job.notification.lease_expires_at = lease
    return True


def _expired(job: Job) -> bool:
    expires_at = job.notification.expires_at
    return expires_at is not None and timezone.now() >= expires_at


def _fail_part(job: Job, channel: str, sender: Sender, err: DeliveryError) -> str:
    """Record a failed part and say what the chain does next: "transport", "channel" or
    "stop" (the round ends here)."""
    prepared = job.prepared
    total = len(prepared.parts) if prepared else 1
    outcome = Outcome.DEFERRED if isinstance(err, DailyLimitReached) else _outcome_of(err)
    error = err.message
    if job.accepted:
        error = f"{len(job.accepted)} of {total} parts accepted; then: {error}"
    job.record(
        channel,
        sender.transport,
        Outcome.PARTIAL if job.accepted and outcome == Outcome.TRANSIENT else outcome,
        error=error,
        started_at=job.started_at,
        duration_ms=_elapsed_ms(job),
        provider_message_id=",".join(job.accepted),
        cost=job.cost,
        segments=prepared.segments if prepared else None,
    )
    if isinstance(err, DailyLimitReached):
        job.daily_limit = True
        return "channel"
    if err.rate_limited:
        job.retry_after = max(job.retry_after or 0.0, err.retry_after or 0.0)
        job.progress.resume = {"channel": job.channel_index, "transient": job.transient}
        return "stop"
    if job.accepted:
        # Partly delivered: completed on this transport or not at all.
        if err.ambiguous and sender.paid:
            job.stuck = (
                f"partly delivered via {channel} ({len(job.accepted)} of {total} parts); the "
                f"next part's outcome is unknown, so it is not sent again: {err.message}"
            )
        elif err.permanent:
            job.stuck = (
                f"partly delivered via {channel} ({len(job.accepted)} of {total} parts); "
                f"the rest was refused: {err.message}"
            )
        else:
            job.transient = True
        return "stop"
    if err.ambiguous and sender.paid:
        job.progress.blocked[channel] = "unknown"
        return "channel"
    if err.permanent and not err.transport_only:
        job.progress.blocked[channel] = "permanent"
        try:
            sender.on_permanent(job.contact, err)
        except Exception:
            logger.exception("on_permanent of %s failed", sender.transport)
        return "channel"
    if not err.permanent:
        job.channel_transient = True
    return "transport"


def _send_parts(job: Job, channel: str, sender: Sender) -> str | Wait:
    """Prepare (once) and send the parts of the current transport: "sent", "transport",
    "channel", "stop", or a ``Wait`` for a pacing slot."""
    if job.prepared is None:
        job.started_at = timezone.now()
        job.began = time.monotonic()
        try:
            job.prepared = sender.prepare(job.notification, job.contact)
        except SkipChannel as skip:
            job.record(channel, sender.transport, Outcome.SKIPPED, error=str(skip))
            job.prepared = None
            return "transport"
        except DeliveryError as err:
            job.prepared = None
            return _fail_part(job, channel, sender, err)
        except Exception as err:  # noqa: BLE001 - recorded; nothing was sent
            job.prepared = None
            return _fail_part(job, channel, sender, _unexpected(err))
        partial = job.progress.partial
        if partial and partial.get("transport") == sender.transport:
            job.accepted = list(partial.get("ids") or [])
            job.part = len(job.accepted)
            job.cost = Decimal(partial["cost"]) if partial.get("cost") else None
    prepared = job.prepared
    while job.part < len(prepared.parts):
        if _expired(job):
            return "stop"
        paces = [p for p in sender.paces(prepared, job.part) if p.rate > 0]
        while job.paces_held < len(paces):
            try:
                booking = pacing.book_all(
                    paces[job.paces_held :],
                    settings.NOTIFY_TELEGRAM_PACE_MAX_WAIT,
                    SLOT_TOLERANCE,
                )
            except DeliveryError as err:
                return _fail_part(job, channel, sender, err)
            job.paces_held += booking.held
            if booking.refused:
                job.defer_until = booking.at
                job.progress.resume = {"channel": job.channel_index, "transient": job.transient}
                return "stop"
            job.slot_at = max(job.slot_at or 0.0, booking.at)
            if booking.at - time.time() > SLOT_TOLERANCE:
                if not _renew_lease(job, until=booking.at):
                    return "stop"
                return Wait(at=booking.at, job=job)
        if job.slot_at is not None and (ahead := job.slot_at - time.time()) > 0:
            time.sleep(ahead)  # at most SLOT_TOLERANCE: never early for a slot
        late_after = (
            min(LATE_SLOT_TOLERANCE, max(0.5 / paces[-1].rate, LATE_SLOT_FLOOR)) if paces else 0.0
        )
        if (
            job.slot_at is not None
            and time.time() - job.slot_at > late_after
            and job.rebooks < LATE_SLOT_REBOOKS
        ):
            job.paces_held, job.slot_at = 0, None
            job.rebooks += 1
            continue  # too late for its slot: book new ones
        if not _renew_lease(job):
            return "stop"
        try:
            result: PartResult = sender.send_part(prepared, job.part)
        except DeliveryError as err:
            job.paces_held, job.slot_at = 0, None
            return _fail_part(job, channel, sender, err)
        except Exception as err:  # noqa: BLE001 - recorded; on a paid transport, ambiguous
            job.paces_held, job.slot_at = 0, None
            return _fail_part(job, channel, sender, _unexpected(err, ambiguous=sender.paid))
        job.paces_held, job.slot_at, job.rebooks = 0, None, 0
        job.accepted.append(result.provider_message_id)
        if result.cost is not None:
            job.cost = (job.cost or Decimal(0)) + result.cost
        job.part += 1
        if job.part < len(prepared.parts):
            job.progress.partial = {
                "channel": channel,
                "transport": sender.transport,
                "ids": list(job.accepted),
                "parts": len(prepared.parts),
                "cost": str(job.cost) if job.cost is not None else None,
            }
            if not _renew_lease(job, save_progress=True):
                return "stop"
    job.progress.partial = None
    job.success = job.record(
        channel,
        sender.transport,
        Outcome.SUCCESS,
        started_at=job.started_at,
        duration_ms=_elapsed_ms(job),
        provider_message_id=",".join(job.accepted),
        cost=job.cost,
        segments=prepared.segments,
    )
    return "sent"


def _unexpected(err: Exception, *, ambiguous: bool = False) -> DeliveryError:
    logger.warning("unexpected %s from a sender", type(err).__name__, exc_info=err)
    return DeliveryError(f"unexpected {type(err).__name__}: {err}", ambiguous=ambiguous)


def advance(job: Job) -> Decision | Wait:
    """Walk the job's chain from where it stands; a ``Decision`` when the round is over, or
    a ``Wait`` for a pacing slot."""
    while job.channel_index < len(job.order):
        channel = job.order[job.channel_index]
        if job.senders is None:
            senders, outcome, reason = _usable(job, channel)
            if not senders:
                job.record(channel, channel, outcome, error=reason)
                _leave_channel(job)
                continue
            job.senders = senders
        while job.transport_index < len(job.senders):
            sender = job.senders[job.transport_index]
            step = _send_parts(job, channel, sender)
            if isinstance(step, Wait):
                return step
            if step == "sent" or step == "stop":
                return _conclude(job)
            if step == "channel":
                break
            _leave_transport(job)
        _leave_channel(job)
    return _conclude(job)


def _conclude(job: Job) -> Decision:
    """Write the round's attempts and the notification's new state; the decision."""
    notification = job.notification
    now = timezone.now()
    if job.lost:
        _write(job, {})
        return Decision(notification.pk, None)
    if job.success is not None:
        return _finish(
            job,
            status=Status.SENT,
            channel=job.success.channel,
            sent_at=now,
            next_attempt_at=None,
            last_error=job.summary(),
        )
    if _expired(job):
        return _finish(
            job,
            status=Status.EXPIRED,
            next_attempt_at=None,
            last_error=f"expired before it could be delivered; {job.summary()}".rstrip("; "),
        )
    if job.stuck:
        return _finish(job, status=Status.FAILED, next_attempt_at=None, last_error=job.stuck)
    if job.retry_after is not None or job.defer_until is not None:
        # Our pace or the provider's rate limit: not the recipient's fault, not a round.
        wait = job.retry_after if job.retry_after is not None else job.defer_until - time.time()
        due = now + timedelta(seconds=max(wait or 0.0, 0.05))
        return _finish(
            job,
            status=Status.QUEUED,
            next_attempt_at=due,
            rounds_back=True,
            last_error=job.summary() or "waiting for a pacing slot",
            due=due,
        )
    rounds_left = job.round < settings.NOTIFY_MAX_ROUNDS
    wait_for_sms = job.daily_limit and settings.NOTIFY_SMS_LIMIT_POLICY == "wait"
    if rounds_left and (job.transient or wait_for_sms):
        due = now + timedelta(seconds=retry_delay(job.round))
        if wait_for_sms and not job.transient:
            due = max(due, next_day_start())
        if notification.expires_at is not None and due >= notification.expires_at:
            return _finish(
                job,
                status=Status.EXPIRED,
                next_attempt_at=None,
                last_error=f"expires before its next round; round {job.round}: {job.summary()}",
            )
        return _finish(
            job,
            status=Status.QUEUED,
            next_attempt_at=due,
            last_error=f"round {job.round}: {job.summary()}",
            due=due,
        )
    if all(a.outcome == Outcome.SKIPPED for a in job.attempts):
        reason = "no usable contact: " + job.summary()
    elif job.transient or wait_for_sms:
        reason = f"gave up after {job.round} rounds: {job.summary()}"
    else:
        reason = job.summary()
    return _finish(job, status=Status.FAILED, next_attempt_at=None, last_error=reason)


def _finish(
    job: Job, *, due: datetime | None = None, rounds_back: bool = False, **changes: Any
) -> Decision:
    """End the round: ``changes`` to the row (``rounds_back``: the round is not counted)."""
    changes.setdefault("lease_expires_at", None)
    changes["progress"] = job.progress.dump()
    if not _write(job, changes, rounds_back=rounds_back):
        return Decision(job.notification.pk, None)
    return Decision(job.notification.pk, changes["status"], due)


_ATTEMPT_FIELDS = [f for f in DeliveryAttempt._meta.concrete_fields if not f.primary_key]


def _write(job: Job, changes: dict[str, Any], *, rounds_back: bool = False) -> bool:
    """The round's attempts and the row's new state, at once, conditional on the lease.

    One statement on PostgreSQL (a data-modifying CTE: the attempts are inserted only if the
    row was updated), one short transaction elsewhere. False when the lease was lost (the
    attempts are kept) or the row is gone (nothing to keep them on).
    """
    pk = job.notification.pk

    def write() -> int:
        if job.success is not None and job.success.transport in receipts.TRACKED_TRANSPORTS:
            # An SMS whose receipts are tracked: its attempt's id links its parts.
            with transaction.atomic():
                updated = _update_sql(job, changes, rounds_back)
                if updated:
                    DeliveryAttempt.objects.bulk_create(job.attempts)
                    _link_receipts(job)
        elif connection.vendor == "postgresql":
            updated = _write_postgres(job, changes, rounds_back)
        else:
            with transaction.atomic():
                updated = _update_sql(job, changes, rounds_back)
                if updated:
                    _insert_attempts(job.attempts)
        if not updated and Notification.objects.filter(pk=pk).exists():
            DeliveryAttempt.objects.bulk_create(job.attempts)
        return updated

    # The provider may already have accepted the message: losing this write would send it
    # again after the lease expires, so ride out a database restart here.
    updated = retrying_db(write)
    if changes and not updated:
        logger.warning("notification %s: lease lost or row gone; attempts kept if it exists", pk)
    return bool(updated)


@functools.cache
def _notification_column(vendor: str, name: str) -> tuple[str, Callable[[Any], Any]]:
    """A Notification field's quoted column and how its value goes to the database."""
    field = Notification._meta.get_field(name)
    ops = connection.ops
    if isinstance(field, models.DateTimeField):
        adapt = ops.adapt_datetimefield_value
    elif isinstance(field, (models.CharField, models.TextField, models.IntegerField)):
        adapt = _same
    else:
        adapt = functools.partial(field.get_db_prep_save, connection=connection)
    return ops.quote_name(field.column), adapt


def _update_parts(job: Job, changes: dict[str, Any], rounds_back: bool) -> tuple[str, list[Any]]:
    """The UPDATE of the row, conditional on the lease, as SQL and parameters."""
    vendor = connection.vendor
    quote = connection.ops.quote_name
    assignments, params = [], []
    for name, value in changes.items():
        column, adapt = _notification_column(vendor, name)
        assignments.append(f"{column} = %s")
        params.append(adapt(value))
    if rounds_back:
        assignments.append(f"{quote('rounds')} = {quote('rounds')} - 1")
    lease = connection.ops.adapt_datetimefield_value(job.lease)
    sql = (
        f"UPDATE {quote(Notification._meta.db_table)} SET {', '.join(assignments)} "
        f"WHERE {quote('id')} = %s AND {quote('status')} = %s AND "
        f"{quote('lease_expires_at')} = %s"
    )
    return sql, [*params, job.notification.pk, Status.SENDING, lease]


def _update_sql(job: Job, changes: dict[str, Any], rounds_back: bool) -> int:
    if not changes:
        return 0
    sql, params = _update_parts(job, changes, rounds_back)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


@functools.cache
def _attempt_columns(vendor: str) -> list[tuple[str, str, Callable[[Any], Any]]]:
    """Each attempt column: its attribute, its SQL type, and how its value goes to the
    database (computed once per database vendor)."""
    ops = connection.ops
    columns = []
    for column in _ATTEMPT_FIELDS:
        if isinstance(column, models.DateTimeField):
            adapt = ops.adapt_datetimefield_value
        elif isinstance(column, models.DecimalField):
            adapt = functools.partial(
                ops.adapt_decimalfield_value,
                max_digits=column.max_digits,
                decimal_places=column.decimal_places,
            )
        elif isinstance(column, (models.CharField, models.TextField, models.IntegerField)):
            adapt = _same
        else:
            adapt = functools.partial(column.get_db_prep_save, connection=connection)
        columns.append((column.attname, column.db_type(connection), adapt))
    return columns


def _same(value: Any) -> Any:
    return value


def _attempt_rows(attempts: list[DeliveryAttempt], cast: bool) -> tuple[str, list[Any]]:
    """``(…), (…)`` rows of the attempts' values (cast to each column's type if ``cast``)."""
    columns = _attempt_columns(connection.vendor)
    placeholders = ", ".join(f"%s::{sql_type}" if cast else "%s" for _, sql_type, _ in columns)
    row = f"({placeholders})"
    params = [adapt(getattr(attempt, name)) for attempt in attempts for name, _, adapt in columns]
    return ", ".join([row] * len(attempts)), params


def _insert_attempts(attempts: list[DeliveryAttempt]) -> None:
    if not attempts:
        return
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in _ATTEMPT_FIELDS)
    rows, params = _attempt_rows(attempts, cast=False)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(DeliveryAttempt._meta.db_table)} ({columns}) VALUES {rows}",
            params,
        )


def _write_postgres(job: Job, changes: dict[str, Any], rounds_back: bool) -> int:
    update, params = _update_parts(job, changes, rounds_back)
    if not job.attempts:
        with connection.cursor() as cursor:
            cursor.execute(update, params)
            return cursor.rowcount
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in _ATTEMPT_FIELDS)
    rows, row_params = _attempt_rows(job.attempts, cast=True)
    sql = (
        f"WITH updated AS ({update} RETURNING {quote('id')}), "
        f"inserted AS (INSERT INTO {quote(DeliveryAttempt._meta.db_table)} ({columns}) "
        f"SELECT * FROM (VALUES {rows}) AS attempt "
        f"WHERE EXISTS (SELECT 1 FROM updated)) "
        f"SELECT count(*) FROM updated"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *row_params])
        return cursor.fetchone()[0]


def _link_receipts(job: Job) -> None:
    """Register the parts of the SMS just sent, so its receipts (some may have come already)
    can settle it: in the transaction that writes its attempt."""
    success = job.success
    if success.pk is None:  # a database that returns no ids from a bulk insert
        success.pk = (
            DeliveryAttempt.objects.filter(
                notification_id=job.notification.pk,
                round=success.round,
                transport=success.transport,
                outcome=Outcome.SUCCESS,
            )
            .order_by("-pk")
            .values_list("pk", flat=True)
            .first()
        )
    receipts.link_parts(success, job.accepted)


def release(job: Job) -> Decision:
    """Give a job waiting for its slot back to the queue (its consumer is stopping): due
    now, the round not counted, the chain resuming where it stood."""
    job.progress.resume = {"channel": job.channel_index, "transient": job.transient}
    return _finish(
        job,
        status=Status.QUEUED,
        next_attempt_at=timezone.now(),
        rounds_back=True,
        last_error=job.summary(),
        due=timezone.now(),
    )


def run_to_end(job: Job) -> Decision:
    """``advance`` until the round is decided, sleeping through pacing waits.

    For callers with no timer of their own (tests, a management command); the consumer's
    workers use ``tasks``, which never sleep.
    """
    step = advance(job)
    while isinstance(step, Wait):
        time.sleep(max(step.at - time.time(), 0.0))
        step = advance(step.job)
    return step


def deliver_now(ids: list[int]) -> list[Decision]:
    """Claim ``ids`` and deliver each one in this thread: the round's decisions."""
    return [run_to_end(job) for job in claim(ids)]
