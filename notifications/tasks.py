"""The task layer: the only code that enqueues or schedules. huey tasks load by id and call
``delivery``, which decides; this module carries out the decision (a retry at a time, a wait
for a pacing slot).

Doorbells: ``ring(ids)`` puts the ids in the queue, a few per message (``NOTIFY_BATCH_SIZE``,
fewer when there are few, so every worker gets some), each message claimed with one
statement. The queue is only a doorbell: a lost or repeated message is harmless (the claim
decides), and the sweeper rings again for rows that waited too long.

Pacing never holds a worker: a job whose pacing slot starts later waits in this process's
``Lane``, a timer that hands it to a small pool of threads when its slot comes. Workers go on
with deliverable work meanwhile. The waiting row stays ``sending`` under its lease; if this
consumer dies, the sweeper re-queues it, and a consumer stopping cleanly gives its waiting
jobs back to the queue at once.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
)
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import HUEY, on_shutdown, on_startup, periodic_task, task

from notifications import (
    campaign_sets,
    cancelling,
    composing,
    delivery,
    fill_process,
    queue_put,
    receipts,
    recovery,
    rollup,
    selectors,
    telegram_bot,
)
from notifications.channels import all_senders
from notifications.models import ApiIdempotencyKey
from notifications.operations import heartbeat, logs, metrics
from notifications.preferences import caps
from notifications.senders.base import DeliveryError
from notifications.senders.sms_smpp import SmppSender, close_sessions, on_deliver_sm, session

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _with_connections(fn: Callable) -> Callable:
    """A task that fails on a broken database connection closes it, so the next task (or
    huey's retry) reconnects."""

    @functools.wraps(fn)
    def inner(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (OperationalError, InterfaceError):
            connection.close()
            raise

    return inner


# --- doorbells -------------------------------------------------------------------------------


def doorbell_workers() -> int:
    """The worker threads doorbells are sized for: ``NOTIFY_DOORBELL_THREADS`` when set,
    else those of the consumers alive now (their heartbeats), else, while none has reported,
    NOTIFY_WORKERS × NOTIFY_CONSUMERS. A database that can't be read falls back the same."""
    if settings.NOTIFY_DOORBELL_THREADS:
        return settings.NOTIFY_DOORBELL_THREADS
    try:
        live = heartbeat.live_workers()
    except DatabaseError as err:
        logger.warning("consumers' heartbeats not read (%s); doorbells sized by settings", err)
        live = 0
    return live or settings.NOTIFY_WORKERS * settings.NOTIFY_CONSUMERS


def _batch_size(count: int) -> int:
    """Ids per queue message for ``count`` due together: about four messages per worker
    (``doorbell_workers``), so each has work and none waits long behind another's batch,
    and at most NOTIFY_BATCH_SIZE per message, so a large campaign rings a fifth as many
    doorbells as one per ten."""
    workers = doorbell_workers()
    return max(1, min(settings.NOTIFY_BATCH_SIZE, math.ceil(count / (workers * 4))))


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in slices of ``size`` (the last shorter), in order."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _chunks(ids: list[int], size: int | None = None) -> Iterator[Sequence[int]]:
    """``ids`` in queue messages of ``size`` (default ``_batch_size`` of them)."""
    return chunked(ids, size or _batch_size(len(ids)))


# How long ringing keeps trying while the queue is unreachable (its Redis or PostgreSQL
# restarting): a broken connection is replaced on the next try. A doorbell rung twice (the
# first went in, its answer was lost) is harmless: the claim decides.
RING_RETRY_SECONDS = 10.0


def _enqueue(put: Callable[[], object]) -> None:
    deadline = time.monotonic() + RING_RETRY_SECONDS
    delay = 0.25
    while True:
        try:
            put()
            return
        except Exception as err:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("queue unavailable (%s); ringing again in %.2fs", err, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def ring(ids: Iterable[int], *, eta: datetime | None = None, size: int | None = None) -> None:
    """Tell the consumers these notifications are due (at ``eta``, or now), ``size`` ids a
    message (default: ``_batch_size``).

    Called after the transaction that queued them commits.
    """
    ids = list(ids)
    if eta is None:
        _put_now([deliver.s(chunk) for chunk in _chunks(ids, size)])
        return
    for chunk in _chunks(ids, size):
        _enqueue(lambda chunk=chunk: deliver.schedule(args=(chunk,), eta=eta))


def _put_now(messages: list) -> None:
    """Put these messages in the queue together (one round trip on Redis), trying again as
    ``_enqueue`` does (all of them: a doorbell rung twice is harmless)."""
    if messages:
        _enqueue(lambda: queue_put.put_many(HUEY, messages))


def queue_or_leave_to_sweeper(put: Callable[[], object], what: str) -> bool:
    """``put`` (a ring, or a campaign's start, with their tries); a queue still unreachable
    is logged, not raised: what ``put`` was for is committed, and the sweeper rings due rows
    and resumes campaigns that waited longer than NOTIFY_SWEEP_STALE_SECONDS. Raising would
    answer an operator, an API client or a worker's round with an error for work that was
    done. False when it was left."""
    try:
        put()
        return True
    except Exception:
        logger.exception(
            "queue unavailable: %s; the sweeper picks it up once it has waited "
            "NOTIFY_SWEEP_STALE_SECONDS",
            what,
        )
        return False


def ring_due(due: Iterable[tuple[int, datetime | None]], *, among: int = 0) -> None:
    """Ring for (id, when) pairs: now for those due, at their time for scheduled ones. The
    messages are sized for all of them together: a campaign sent at 10:00 in each recipient's
    zone rings about as many doorbells as one sent at one time, not that many per zone.
    ``among``: the size of the whole they are part of (a campaign's audience, created a
    chunk at a time), so that a million recipients ring about a million / NOTIFY_BATCH_SIZE
    doorbells, not a million / (a chunk's share per worker)."""
    now = timezone.now()
    ready: list[int] = []
    later: dict[datetime, list[int]] = defaultdict(list)
    for pk, at in due:
        if at is None or at <= now:
            ready.append(pk)
        else:
            later[at].append(pk)
    size = _batch_size(max(among, len(ready) + sum(map(len, later.values()))))
    if ready:
        ring(ready, size=size)
    for at, ids in later.items():
        ring(ids, eta=at, size=size)


def pending_in_queue() -> int:
    """How many messages wait in the queue (not counting scheduled ones)."""
    return HUEY.pending_count()


# --- carrying out decisions ------------------------------------------------------------------


def carry_out(step: delivery.Decision | delivery.Wait) -> None:
    """Schedule what a round's step asks for: a later doorbell, or a wait for a slot.

    The decision is already recorded: a doorbell the queue would not take is left to the
    sweeper (``queue_or_leave_to_sweeper``).
    """
    if isinstance(step, delivery.Wait):
        lane().call_at(step.at, step.job)
    elif step.due is not None:
        queue_or_leave_to_sweeper(
            lambda: ring([step.notification_id], eta=step.due),
            f"notification {step.notification_id} is {step.status}, due {step.due}, not rung",
        )


def drive(job: delivery.Job) -> None:
    """Advance ``job`` and carry out what it decided."""
    carry_out(delivery.advance(job))


class Lane:
    """Jobs waiting for their pacing slot, and a few threads of its own that send each when
    its slot comes. Holds no huey worker.

    When every lane thread is busy and slots have come, the workers help: between their own
    jobs each runs one paced job that is due (``take_due``), never one that is not. So when
    the pace is not the limit, the sends go out from every thread, and the schedule can't run
    ahead of what is actually sent (each booking a worker makes is matched by a send).
    """

    def __init__(self, threads: int) -> None:
        self._heap: list[tuple[float, int, delivery.Job]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._idle = 0  # lane threads waiting for a slot to come
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._serve, name=f"paced-{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def call_at(self, at: float, job: delivery.Job) -> None:
        with self._cond:
            if not self._stopping:
                heapq.heappush(self._heap, (at, next(self._order), job))
                metrics.paced_jobs_waiting(len(self._heap))
                self._cond.notify()
                return
        carry_out(delivery.release(job))

    def waiting(self) -> int:
        with self._cond:
            return len(self._heap)

    def take_due(self) -> delivery.Job | None:
        """A job whose slot has come, when no lane thread is free to send it; else None."""
        with self._cond:
            if self._heap and not self._idle and self._heap[0][0] <= time.time():
                return self._pop()
        return None

    def _next(self) -> delivery.Job | None:
        """The next job whose slot has come (waiting for it), or None when stopping."""
        with self._cond:
            self._idle += 1
            try:
                while not self._stopping and (not self._heap or self._heap[0][0] > time.time()):
                    timeout = self._heap[0][0] - time.time() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopping:
                    return None
                return self._pop()
            finally:
                self._idle -= 1

    def _pop(self) -> delivery.Job:
        """The next job off the heap (the caller holds the lock)."""
        job = heapq.heappop(self._heap)[2]
        metrics.paced_jobs_waiting(len(self._heap))
        return job

    def _serve(self) -> None:
        while (job := self._next()) is not None:
            _run_paced(job)

    def stop(self) -> None:
        """Give every waiting job back to the queue; let the ones sending finish."""
        with self._cond:
            self._stopping = True
            waiting = [job for _, _, job in self._heap]
            self._heap.clear()
            metrics.paced_jobs_waiting(0)
            self._cond.notify_all()
        give_back(waiting)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()


def help_lane(limit: int = 1) -> int:
    """Send up to ``limit`` paced jobs whose slots have come while the lane's threads are all
    busy (see ``Lane``); returns how many."""
    if _lane is None:
        return 0
    done = 0
    while done < limit and (job := _lane.take_due()) is not None:
        _run_paced(job)
        done += 1
    return done


def _run_paced(job: delivery.Job) -> None:
    try:
        drive(job)
    except (OperationalError, InterfaceError):
        connection.close()
        logger.exception(
            "database error sending notification %s; the sweeper recovers it", job.notification.pk
        )
    except Exception:
        logger.exception(
            "error sending notification %s; the sweeper recovers it", job.notification.pk
        )
    finally:
        _tidy_connections()


_tidied = threading.local()


def _tidy_connections() -> None:
    """What ``close_old_connections`` does between requests (drop a connection past its age
    or broken), at most once a second per lane thread: each call makes the next query check
    the connection with a round trip of its own, which per paced send cost more than the
    send's own writes."""
    now = time.monotonic()
    if now - getattr(_tidied, "at", 0.0) >= 1.0:
        _tidied.at = now
        close_old_connections()


_lane: Lane | None = None
_lane_lock = threading.Lock()


_workers_started = 0


def lane_threads() -> int:
    """``NOTIFY_PACED_THREADS``, else as many as the consumer has workers (``run_huey -w``
    may differ from NOTIFY_WORKERS): paced sends go out from the lane, so it needs the
    workers' concurrency to keep up when the pace allows that much."""
    return settings.NOTIFY_PACED_THREADS or max(_workers_started, settings.NOTIFY_WORKERS)


def lane() -> Lane:
    """This process's lane (started on first use)."""
    global _lane
    with _lane_lock:
        if _lane is None:
            _lane = Lane(lane_threads())
        return _lane


@on_startup()
def count_workers() -> None:
    """Called by huey in each worker thread as it starts: counted for ``lane_threads``."""
    global _workers_started
    with _lane_lock:
        _workers_started += 1


def smpp_in_use() -> bool:
    return "smpp" in settings.NOTIFY_SMS_TRANSPORTS and SmppSender().is_configured()


def keep_smpp_bound() -> bool:
    """Bind this process's SMPP session if SMPP is in use and it is not bound, so delivery
    receipts (and those the SMSC stored meanwhile) arrive before any send. True when bound."""
    if not smpp_in_use():
        return False
    current = session()
    try:
        current.open()
    except DeliveryError as err:
        logger.warning("SMPP not bound for delivery receipts: %s (retried every minute)", err)
    return current.bound


_started: set[str] = set()
_started_lock = threading.Lock()


def _first_in_process(name: str) -> bool:
    """True the first time ``name`` asks in this process: huey calls its start-up hooks in
    every worker thread."""
    with _started_lock:
        if name in _started:
            return False
        _started.add(name)
        return True


@on_startup()
def check_connection_budget() -> None:
    """At consumer start-up (once per process): on PostgreSQL, warn when the consumers'
    threads could open more connections than the server allows. Each worker, each paced
    lane thread and each thread of the consumer's webhook lane (a process of its own) holds
    one; when they run out, a send whose result can't be written is sent again once its
    lease expires."""
    if not _first_in_process("connection budget") or connection.vendor != "postgresql":
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('max_connections')::int"
                " - current_setting('superuser_reserved_connections')::int"
            )
            allowed = cursor.fetchone()[0]
    except (OperationalError, InterfaceError):
        return  # the database's own trouble shows soon enough
    webhooks = settings.NOTIFY_WEBHOOK_THREADS
    per_process = settings.NOTIFY_WORKERS + lane_threads() + webhooks + 2
    needed = settings.NOTIFY_CONSUMERS * per_process
    if needed > allowed:
        logger.warning(
            "%s consumer process(es) × (%s workers + %s paced threads + %s webhook threads "
            "+ 2) may open %s PostgreSQL connections, and the server allows %s "
            "(max_connections): when they run out, a notification sent but not recorded is "
            "sent again after its lease. Lower NOTIFY_WORKERS, NOTIFY_PACED_THREADS or "
            "NOTIFY_WEBHOOK_THREADS, raise max_connections, or put PgBouncer in front.",
            settings.NOTIFY_CONSUMERS,
            settings.NOTIFY_WORKERS,
            lane_threads(),
            webhooks,
            needed,
            allowed,
        )


@on_startup()
def report_half_configured() -> None:
    """At consumer start-up (once per process): name each transport that has some of its
    settings and lacks others. It is skipped as not configured, which would otherwise go
    unnoticed until a notification fails over past it."""
    if not _first_in_process("half configured"):
        return
    for sender in all_senders():
        half = sender.half_configured()
        if half:
            logger.warning(
                "%s/%s is not configured: %s; it is skipped until that is set "
                "(manage.py check_channels)",
                sender.channel,
                sender.transport,
                half,
            )


@on_startup()
def receive_sms_receipts() -> None:
    """At consumer start-up (once per process; huey calls it in every worker thread):
    handle SMPP delivery receipts, and bind the session now rather than at the first send."""
    on_deliver_sm(receipts.handle_deliver_sm)
    if _first_in_process("sms receipts"):
        keep_smpp_bound()


@on_shutdown()
def stop_consumer_work() -> None:
    """At consumer shutdown (once per worker thread; the first does it): give waiting jobs
    back, close mail connections and SMPP sessions."""
    global _lane
    with _lane_lock:
        current, _lane = _lane, None
    if current is not None:
        current.stop()
    for sender in all_senders():
        mailer = getattr(sender, "mailer", None)
        if mailer is not None:
            mailer.close()
    close_sessions()


# --- tasks -----------------------------------------------------------------------------------


@task(retries=3, retry_delay=2)
@_with_connections
def deliver(notification_ids: list[int]) -> int:
    """Claim the notifications that are still due among ``notification_ids`` (someone
    else's are skipped) and deliver them; returns how many this task claimed."""
    jobs = delivery.claim(notification_ids)
    for n, job in enumerate(jobs):
        try:
            delivery.confirm_ours(jobs[n:])
            drive(job)
        except BaseException:
            # This one is left to its lease; the ones not started yet go back now rather
            # than wait for theirs (NOTIFY_LEASE_SECONDS) as if their worker had died.
            give_back(jobs[n + 1 :])
            raise
        help_lane()
    help_lane(limit=len(jobs))
    return len(jobs)


def give_back(jobs: list[delivery.Job]) -> None:
    """Return claimed jobs that were never started to the queue (``delivery.release``)."""
    for job in jobs:
        try:
            carry_out(delivery.release(job))
        except Exception:
            logger.exception(
                "could not give notification %s back; the sweeper recovers it when its lease "
                "expires",
                job.notification.pk,
            )


@task(retries=3, retry_delay=2)
@_with_connections
def dispatch_due() -> int:
    """Ring the doorbell of every waiting notification that is due now."""
    ids = selectors.due_ids()
    ring(ids)
    return len(ids)


def start_campaign_fill(campaign_id: int) -> None:
    """Queue a campaign's creation (``campaign_fill``), trying again as ringing does."""
    _enqueue(lambda: campaign_fill(campaign_id))


@task(retries=3, retry_delay=5)
@_with_connections
def campaign_fill(campaign_id: int) -> int:
    """Create a campaign's notifications chunk by chunk (``composing.CampaignFiller``),
    ringing each chunk's doorbells once it has committed; returns how many it created. Run
    twice, the second finds the work done (or backs off a chunk the first took). A large
    campaign is created by a process of its own (``fill_process``), out of the sending
    threads' way; what it leaves, this thread creates."""
    created = 0
    with logs.bound(campaign_id=campaign_id):
        if fill_process.wanted(campaign_id):
            created += fill_process.run(campaign_id)
        created += fill(campaign_id)
        logger.info("campaign %s: %s notifications created by this task", campaign_id, created)
        return created


def fill(
    campaign_id: int,
    *,
    count: Callable[[str, list], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> int:
    """Create the campaign's notifications not created yet, a step at a time, ringing each
    step's doorbells; returns how many. ``count``: what counts a committed step's (the
    metric); ``stop``: asked after each step, true to stop there."""
    filler = composing.CampaignFiller(campaign_id, count=count)
    created = 0
    while True:
        step = filler.step()
        ring_due(step.due, among=step.audience)
        created += step.created
        if step.finished:  # by its total: a creation resumed by another process counts whole
            campaign_sets.analyze_after(step.recipients)
        if step.done or (stop is not None and stop()):
            return created


# Ahead of every doorbell in the queue (huey runs higher priorities first): a cancelled
# campaign's doorbells would otherwise send what this is about to cancel.
CANCEL_PRIORITY = 100


@task(priority=CANCEL_PRIORITY)
@_with_connections
def campaign_cancel_rest(campaign_id: int, after: int = 0) -> int:
    """Cancel the rest of a campaign's notifications being cancelled, after id ``after``, a
    chunk at a time (``cancelling.campaign_rest``); returns the last id looked at."""
    with logs.bound(campaign_id=campaign_id):
        last = cancelling.campaign_rest(campaign_id, after).last
        logger.info("campaign %s: cancelled up to notification %s", campaign_id, last)
        return last


@periodic_task(crontab(minute="*"))
@_with_connections
def sweep() -> dict[str, int]:
    """Every minute: re-queue expired leases, end expired rows, re-ring lost doorbells."""
    return sweep_now()


def sweep_now() -> dict[str, int]:
    """The sweeper's work, now: see ``notifications.recovery``. A busy queue is left to
    drain first: its rows are not lost, only waiting."""
    result = recovery.sweep()
    to_ring = set(result.requeued)
    stalled: list[int] = []
    if pending_in_queue() == 0:
        to_ring.update(recovery.stale_due_ids())
        # A campaign whose creation stopped (its consumer died mid-way) resumes after its
        # last committed chunk.
        stalled = selectors.stalled_campaign_ids()
    if to_ring:
        ring(sorted(to_ring))
    for campaign_id in stalled:
        campaign_fill(campaign_id)
    # A cancel whose consumer died midway goes on from its cursor, whatever the queue holds.
    for campaign_id, after in selectors.cancelling_campaigns():
        campaign_cancel_rest(campaign_id, after)
    return {**result.as_dict(), "rung": len(to_ring), "campaigns_resumed": len(stalled)}


@periodic_task(crontab(minute="*"))
@_with_connections
def check_sms_receipts() -> dict[str, int]:
    """Every minute: keep the SMPP session bound for receipts, and ask SMS Aero about SMS
    still waiting for theirs (``receipts.poll_smsaero``)."""
    on_deliver_sm(receipts.handle_deliver_sm)
    keep_smpp_bound()
    return receipts.poll_smsaero()


@periodic_task(crontab(minute="7"))
@_with_connections
def prune() -> dict[str, int]:
    """Hourly: forget old Telegram update ids and dead links, receipts never matched, and
    frequency-cap counts of windows long past."""
    return {
        **telegram_bot.prune(),
        "receipts": receipts.prune(),
        "cap_counts": caps.prune(timezone.now()),
    }


@periodic_task(crontab(minute="17"))
@_with_connections
def prune_idempotency_keys() -> int:
    """Hourly: forget the API's Idempotency-Keys older than NOTIFY_API_IDEMPOTENCY_HOURS."""
    cutoff = timezone.now() - timedelta(hours=settings.NOTIFY_API_IDEMPOTENCY_HOURS)
    deleted, _ = ApiIdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted


@periodic_task(crontab(minute="27"))
@_with_connections
def rollup_dashboard() -> dict[str, int]:
    """Hourly: roll up the dashboard's past days (``notifications.rollup``)."""
    return rollup.refresh()
