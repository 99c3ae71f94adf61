"""Delivering notifications: claim → channel chain → record → a decision.

This module decides; ``tasks`` enqueues. ``claim(ids)`` (``notifications.claiming``) takes
queued, due notifications with one conditional UPDATE (whoever changes a row owns its send
until its lease expires) and returns a ``Job`` (``notifications.job``) for each. ``advance(job)`` walks the job's channel chain until it is done,
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
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from notifications import pacing
from notifications.channels import channel_closed_reason, senders_for
from notifications.claiming import CLAIMABLE as CLAIMABLE  # re-exported: the sweeper's
from notifications.claiming import claim
from notifications.claiming import end_unclaimable as end_unclaimable
from notifications.job import Decision, Job, Wait
from notifications.job import Progress as Progress
from notifications.models import DeliveryAttempt, Notification
from notifications.operations import logs
from notifications.preferences import digests as digests_module
from notifications.preferences import policy
from notifications.recording import Round, retrying_db, write_round
from notifications.senders.base import DeliveryError, Pace, PartResult, Sender, SkipChannel
from notifications.senders.sms import DailyLimitReached, next_day_start

logger = logging.getLogger(__name__)

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome

# A pacing slot this close is waited for in the worker (a short sleep, under half of one
# Telegram call) and the part sent at its slot; a later one waits in the lane
# (``notifications.tasks``) and the worker goes on. Handing every slot a few milliseconds
# ahead to the lane made the workers book far ahead of what the lane could send.
SLOT_TOLERANCE = 0.02
# A send that comes later than this after its slot (the latest of its paces', a busy machine)
# books a new one instead: late sends bunch up, and a provider counting over a sliding second
# would see more than the rate. The bound is half an interval of the pace (at 25/s: 20 ms, so
# any second holds at most about 26 sends), at most 100 ms; each pace has its own, and only
# the paces the send is that late for are booked again: a send 30 ms late is late for the
# bot's slot at 1,000/s (10 ms) but not for its chat's at 1/s (100 ms), and booking the chat
# again would put it a second later. (A chat's slot held while the send waited for the bot's
# is not late: the chat's next slot is still a full interval after it.)
LATE_SLOT_TOLERANCE = 0.1
# ... and at least 10 ms: at a fast pace (1,000/s), half an interval is shorter than the
# scheduling jitter of a busy process; 10 ms late adds at most 1 % to any second.
LATE_SLOT_FLOOR = 0.01
LATE_SLOT_REBOOKS = 5
# How a round's end is logged: what an operator may want to look into at INFO, a send that
# went as it should at DEBUG (a line per notification at INFO would cost a busy consumer).
ROUND_LOG_LEVELS = {
    Status.SENT: logging.DEBUG,
    Status.QUEUED: logging.INFO,
    Status.FAILED: logging.INFO,
    Status.EXPIRED: logging.INFO,
}
# A provider call more than this after the row was last seen ours reads it first: a cancel
# stops sends within about this long (``_still_ours``).
CANCEL_CHECK_SECONDS = 0.5


def retry_delay(round_number: int) -> float:
    """Exponential backoff with jitter: base·2^(round-1), capped, then 50–100% of that."""
    delay = settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** max(round_number - 1, 0)
    delay = min(delay, settings.NOTIFY_RETRY_MAX_SECONDS)
    return delay * random.uniform(0.5, 1.0)


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
        job.chose = True
        return [], Outcome.SKIPPED, "opted out"
    refusal = policy.channel_refusal(job.notification, job.category, channel, job.policy)
    if refusal:
        job.chose = True
        return [], Outcome.SKIPPED, refusal
    try:
        address = senders[0].address(job.contact)
    except SkipChannel as skip:
        return [], Outcome.SKIPPED, str(skip)
    except Exception as err:  # noqa: BLE001 - recorded; a later round may find the address
        job.channel_transient = True
        return [], Outcome.TRANSIENT, _unexpected(err).message
    suppressed = policy.address_refusal(channel, address, job.policy)
    if suppressed:
        return [], Outcome.SKIPPED, suppressed
    closed = channel_closed_reason(channel)
    if closed and not partial:
        job.daily_limit = True
        return [], Outcome.DEFERRED, closed
    return senders, "", ""


def _resume_point(job: Job) -> dict[str, Any]:
    """Where a round deferred mid-chain goes on (``Progress.resume``): the channel, and what
    the channels before it found (a transient error: a later round is due; the SMS day's
    limit reached: waiting for tomorrow)."""
    point: dict[str, Any] = {"channel": job.channel_index, "transient": job.transient}
    if job.daily_limit:
        point["daily_limit"] = True
    return point


def _record_unfinished(job: Job, why: str) -> None:
    """The parts of a split message a provider took before the round stopped short of the
    rest (``why``), recorded as partly sent, with their ids and cost."""
    if not job.accepted or job.success is not None or job.prepared is None:
        return
    sender = job.senders[job.transport_index]
    job.record(
        job.order[job.channel_index],
        sender.transport,
        Outcome.PARTIAL,
        error=f"{len(job.accepted)} of {len(job.prepared.parts)} parts accepted; the rest not "
        f"sent: {why}",
        started_at=job.started_at,
        duration_ms=_elapsed_ms(job),
        provider_message_id=",".join(job.accepted),
        cost=job.cost,
        segments=job.prepared.segments,
    )


def _elapsed_ms(job: Job) -> int:
    return int((time.monotonic() - job.began) * 1000)


def _leave_transport(job: Job) -> None:
    job.prepared = None
    job.part = 0
    job.accepted = []
    job.cost = None
    job.paces_held = 0
    job.transport_index += 1


def _late_after(pace: Pace) -> float:
    """How late after its slot a send of ``pace`` may still go (LATE_SLOT_TOLERANCE)."""
    return min(LATE_SLOT_TOLERANCE, max(0.5 / pace.rate, LATE_SLOT_FLOOR))


def _first_late(paces: list[Pace], late_by: float) -> int | None:
    """The first of ``paces`` a send ``late_by`` seconds after its slot is too late for (it
    and those after it are booked again), or None."""
    return next((n for n, pace in enumerate(paces) if late_by > _late_after(pace)), None)


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
    job.seen_ours = time.monotonic()
    return True


def _still_ours(job: Job) -> bool:
    """Before a provider call: is the row still this round's? A notification cancelled
    while it waited (for a pacing slot, behind a slow channel) is not sent. Read when the
    row was last seen ours more than ``CANCEL_CHECK_SECONDS`` ago, and always after a wait
    for a pacing slot: a send starts at most that long after a cancel commits, and a send
    that follows its claim (or its batch's read, ``confirm_ours``) at once costs no query.
    False (and the job lost) when it was cancelled or is gone."""
    now = time.monotonic()
    if now - job.seen_ours < CANCEL_CHECK_SECONDS:
        return True
    if not retrying_db(lambda: _held([job.notification.pk], job.lease)):
        job.lost = True
        return False
    job.seen_ours = now
    return True


def confirm_ours(jobs: Sequence[Job]) -> None:
    """Read at once the rows of ``jobs`` (the rest of a worker's batch, sent one after
    another, the next first) not seen ours for ``CANCEL_CHECK_SECONDS``: those still their
    round's are seen ours now, so their provider calls in the next ``CANCEL_CHECK_SECONDS``
    cost no query each; the others are left to ``_still_ours``, which finds them lost
    before their call. One read per batch every half second instead of one per send; a send
    still starts at most ``CANCEL_CHECK_SECONDS`` after its row was read ours."""
    now = time.monotonic()
    if not jobs or now - jobs[0].seen_ours < CANCEL_CHECK_SECONDS:
        # The next to be sent was seen ours lately, and so were those after it (a claim or
        # this read sees them all at once; only the job being sent is seen ours alone).
        return
    stale = [j for j in jobs if not j.lost and now - j.seen_ours >= CANCEL_CHECK_SECONDS]
    if len(stale) < 2:  # one: its own check reads it, as before
        return
    by_lease: dict[datetime, list[Job]] = {}
    for job in stale:  # one lease for the batch, but for the rows renewed since the claim
        by_lease.setdefault(job.lease, []).append(job)
    for lease, group in by_lease.items():
        held = retrying_db(functools.partial(_held, [j.notification.pk for j in group], lease))
        for job in group:
            if job.notification.pk in held:
                job.seen_ours = now


def _held(ids: list[int], lease: datetime) -> set[int]:
    """Which of ``ids`` are still being sent under ``lease``: one plain SELECT (this runs
    before most provider calls; the ORM's compiling of it cost more than the query)."""
    table = connection.ops.quote_name(Notification._meta.db_table)
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE id IN ({marks}) AND status = %s "
            "AND lease_expires_at = %s",
            [*ids, Status.SENDING, connection.ops.adapt_datetimefield_value(lease)],
        )
        return {row[0] for row in cursor.fetchall()}


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
        job.progress.resume = _resume_point(job)
        if err.pause:  # the provider's limit is the whole bot's: every worker waits
            pacing.push_back(err.pause, err.retry_after or 0.0)
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
                job.progress.resume = _resume_point(job)
                return "stop"
            job.slot_at = max(job.slot_at or 0.0, booking.at)
            if booking.at - time.time() > SLOT_TOLERANCE:
                if not _renew_lease(job, until=booking.at):
                    return "stop"
                job.seen_ours = 0.0  # read again when its slot comes: cancelled meanwhile?
                job.booked_ahead = True  # and paused meanwhile?
                return Wait(at=booking.at, job=job)
        if job.slot_at is not None and (ahead := job.slot_at - time.time()) > 0:
            time.sleep(ahead)  # at most SLOT_TOLERANCE: never early for a slot
        late = None if job.slot_at is None else _first_late(paces, time.time() - job.slot_at)
        if late is not None and job.rebooks < LATE_SLOT_REBOOKS:
            # The slots kept are in the past: the latest is the one booked again.
            job.paces_held, job.slot_at = late, None
            job.rebooks += 1
            continue  # too late for its slot: book that pace, and those after it, again
        if job.booked_ahead:
            # A slot booked now comes after any pause (a 429 pushes the schedule back); one
            # booked before a 429 paused the provider must not be used: book one after it.
            job.booked_ahead = False
            if pacing.paused_until([p.name for p in paces]) > time.time():
                job.paces_held, job.slot_at = 0, None
                continue
        if not _renew_lease(job) or not _still_ours(job):
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
    a ``Wait`` for a pacing slot. What is logged meanwhile carries the notification's id and
    its campaign's."""
    notification = job.notification
    with logs.bound(notification_id=notification.pk, campaign_id=notification.campaign_id):
        return _advance(job)


def _advance(job: Job) -> Decision | Wait:
    if not job.held:
        job.held = True
        held = _hold(job)
        if held is not None:
            return held
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


def _hold(job: Job) -> Decision | None:
    """The round's policy, before any channel: a digest with nothing left in it ends; quiet
    hours or a frequency cap may make it wait (``scheduled``, the round not counted), expire,
    or not be sent (``suppressed``). None: go on (with a cap slot taken, if capped)."""
    if job.empty_digest:
        return _finish(
            job,
            status=Status.CANCELLED,
            next_attempt_at=None,
            last_error="every item of this digest was cancelled",
        )
    now = timezone.now()
    notification, category = job.notification, job.category
    hold = policy.quiet_hold(notification, job.contact, category, now)
    if hold is None:
        slot = retrying_db(lambda: policy.take_slot(notification, job.contact, category, now))
        if isinstance(slot, policy.Slot):
            job.slot = slot
        else:
            hold = slot
    if hold is None:
        return None
    if hold.until is not None:
        return _finish(
            job,
            status=Status.SCHEDULED,
            next_attempt_at=hold.until,
            rounds_back=True,
            last_error=hold.reason,
            due=hold.until,
        )
    return _finish(
        job,
        status=Status.EXPIRED if hold.expire else Status.SUPPRESSED,
        next_attempt_at=None,
        last_error=hold.reason,
    )


def _conclude(job: Job) -> Decision:
    """Write the round's attempts and the notification's new state; the decision."""
    notification = job.notification
    now = timezone.now()
    if job.lost:
        _record_unfinished(job, "the notification was cancelled (or its lease lost)")
        write_round(_round_of(job), {})
        _after_round(job, None, {})
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
        partly = bool(job.accepted) and job.success is None
        _record_unfinished(job, "it expired (its expires_at passed)")
        head = (
            "expired before the rest of it was sent"
            if partly
            else "expired before it could be delivered"
        )
        return _finish(
            job,
            status=Status.EXPIRED,
            next_attempt_at=None,
            last_error=f"{head}; {job.summary()}".rstrip("; "),
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
    if job.chose and all(a.outcome == Outcome.SKIPPED for a in job.attempts):
        # Every channel off by the recipient's own choice (or with no address): on purpose.
        return _finish(
            job,
            status=Status.SUPPRESSED,
            next_attempt_at=None,
            last_error="suppressed by the recipient's choices: " + job.summary(),
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
    written = write_round(_round_of(job), changes, rounds_back=rounds_back)
    _after_round(job, changes["status"] if written else None, changes)
    if not written:
        return Decision(job.notification.pk, None)
    status = changes["status"]
    logger.log(
        ROUND_LOG_LEVELS.get(status, logging.DEBUG) if not rounds_back else logging.DEBUG,
        "round %s: %s%s%s",
        job.round,
        status,
        f" via {changes['channel']}" if changes.get("channel") else "",
        f", due {due:%Y-%m-%d %H:%M:%S}" if due is not None else "",
        extra={"status": status, "round": job.round},
    )
    return Decision(job.notification.pk, status, due)


def _after_round(job: Job, status: str | None, changes: dict[str, Any]) -> None:
    """What a round's end owes others: a cap slot back when it sent nothing; what a sender
    took for parts it did not send (``Sender.give_back``); a digest's items end with it.
    ``status``: what was written (None: nothing was)."""
    if job.slot is not None and status != Status.SENT:
        slot, job.slot = job.slot, None
        retrying_db(lambda: policy.give_back(slot))
    if job.prepared is not None and job.senders:
        sender, prepared = job.senders[job.transport_index], job.prepared
        retrying_db(lambda: sender.give_back(prepared))
    if status is not None and job.notification.digest_size:
        retrying_db(lambda: digests_module.settle(job.notification.pk, changes))


def _round_of(job: Job) -> Round:
    return Round(
        pk=job.notification.pk,
        lease=job.lease,
        attempts=job.attempts,
        success=job.success,
        accepted=job.accepted,
    )


def release(job: Job) -> Decision:
    """Give a job waiting for its slot back to the queue (its consumer is stopping): due
    now, the round not counted, the chain resuming where it stood."""
    job.progress.resume = _resume_point(job)
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
