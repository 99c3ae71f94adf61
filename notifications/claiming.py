"""Claiming notifications: one conditional UPDATE … RETURNING takes the queued, due rows of a
doorbell (whoever changes a row owns its send until its lease expires), then one query loads
them with their users, contacts and categories, and the batch's policy context (the users'
choices) and digests' items are read once for the whole batch. Rows that can never be
claimed (expired, out of rounds) end here. None of a campaign being cancelled is claimed
(``cancelling``): its chunks cancel them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection
from django.db.models import F, Q
from django.utils import timezone

from notifications import invite_tokens
from notifications.channels import channel_order
from notifications.job import Job, Progress
from notifications.models import Campaign, Notification, TelegramLink, UserContact
from notifications.preferences import digests as digests_module
from notifications.preferences import policy
from notifications.recording import retrying_db

Status = Notification.Status
CLAIMABLE = (Status.QUEUED, Status.SCHEDULED)


def _claim_ids(ids: list[int], lease: datetime, now: datetime) -> list[int]:
    """The ids of ``ids`` this call claimed: one conditional UPDATE … RETURNING, on the
    conditions of ``_claimable``."""
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
    campaigns = connection.ops.quote_name(Campaign._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    marks = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, lease_expires_at = %s, rounds = rounds + 1 "
            f"WHERE id IN ({marks}) AND status IN (%s, %s) "
            f"AND (next_attempt_at IS NULL OR next_attempt_at <= %s) "
            f"AND (expires_at IS NULL OR expires_at > %s) AND rounds < %s "
            f"AND (campaign_id IS NULL OR NOT EXISTS (SELECT 1 FROM {campaigns} c "
            f"WHERE c.id = {table}.campaign_id AND c.cancel_cursor IS NOT NULL)) RETURNING id",
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
    """Queued or scheduled, due, not expired, with rounds left, and not of a campaign being
    cancelled (``cancelling.campaign_begin``: its chunks cancel those). The last costs a
    doorbell for such rows no lock: the condition fails on the row as committed."""
    return (
        queryset.filter(status__in=CLAIMABLE, rounds__lt=settings.NOTIFY_MAX_ROUNDS)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .exclude(campaign__in=Campaign.objects.filter(cancel_cursor__isnull=False))
    )


def end_unclaimable(ids: list[int], now: datetime) -> None:
    """Rows of ``ids`` that can never be claimed end now: expired ones ``expired``, those
    with no rounds left ``failed`` (so nothing waits, or loops, forever). (Those of a
    campaign being cancelled are left to its chunks: cancelled here too, beside them, the
    doorbells and the chunks queued for each other's row locks, and the rest of a million
    went at 490/s instead of 740/s; bench-scale.)"""
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
    # query loads each with its user and the user's contact, unordered (they are put in the
    # doorbell's order below; the model's ordering cost a sort and a fifth of the query's
    # compiling).
    notifications = retrying_db(
        lambda: list(
            Notification.objects.filter(pk__in=claimed)
            .select_related("user__contact", "category")
            .order_by()
        )
    )
    # What the policy step needs: one query for the batch, not one per notification.
    context = retrying_db(lambda: policy.load(notifications))
    # In the order of ``ids`` (the doorbell's: oldest due first), whatever order the
    # database's plan returned the claimed rows in (a partial index can make it theirs).
    order = {pk: n for n, pk in enumerate(ids)}
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
            policy=context,
            category=context.category(notification),
        )
        if progress.resume:
            job.channel_index = int(progress.resume.get("channel", 0))
            job.transient = bool(progress.resume.get("transient"))
            job.daily_limit = bool(progress.resume.get("daily_limit"))
            progress.resume = None
        jobs.append(job)
    _fill_digests(jobs)
    _fill_invites([job.notification for job in jobs])
    return jobs


def _fill_digests(jobs: list[Job]) -> None:
    """A digest's message is made from its items now (one query, only when the batch has
    digests); one whose items were all cancelled ends cancelled."""
    digests = [job for job in jobs if job.notification.digest_size]
    if not digests:
        return
    empty = retrying_db(
        lambda: digests_module.fill(
            [job.notification for job in digests],
            {job.notification.pk: job.contact for job in digests},
        )
    )
    for job in digests:
        job.empty_digest = job.notification.pk in empty


def _fill_invites(notifications: list[Notification]) -> None:
    """A Telegram invite is stored with its token masked; the live link is put in here, in
    memory only (no write of this round touches ``message``). One query, only when some of
    them carry an invite."""
    carrying = {n.telegram_link_id for n in notifications if n.telegram_link_id}
    if not carrying:
        return
    nonces = dict(
        retrying_db(
            lambda: list(TelegramLink.objects.filter(pk__in=carrying).values_list("pk", "nonce"))
        )
    )
    for notification in notifications:
        nonce = nonces.get(notification.telegram_link_id)
        if nonce:
            notification.message = invite_tokens.fill(notification.message, nonce)
