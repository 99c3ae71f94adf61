"""Counts over many rows, kept in a table every web process reads and counted again behind
while someone watches: the dashboard's and a campaign's progress.

Today is read live (``statistics.dashboard``), and a campaign's progress counts all its
notifications (``selectors.campaign_progress``): with a million notifications created today,
each takes seconds, and an operator who watched the dashboard or the campaign's page during a
large campaign waited for them on every load (bench-scale: the dashboard 2 s median, 30 s
worst). Their last numbers are kept (``KeptCount``): younger than ``fresh`` seconds, they are
shown as they are; older, they are still shown while one process counts the next behind,
holding the row's lease so that the others, on any host, do not count the same at once.
Only when nobody asked for them for ``NOTIFY_DASHBOARD_STALE_SECONDS`` (the row was written
longer ago than that) and they are older than that, or there are none, must they be counted
now, unless a count is under way somewhere: beside the cancel of the rest of a million a
count took longer than that, and the load after it, its numbers already that old when they
were kept, counted again in the request (13–18 s); now it shows them, with their time, and
counts behind. Numbers that must be counted now are counted behind too, the request waiting
``WAIT_SECONDS`` for them, then showing the stale ones or, with none, saying they are being
counted.

Until 2026-12-07 each web process kept its own: a process's first look, or its first for a
minute, waited a second for a count that took longer at a million rows and then rendered
(bench-scale: the dashboard 1.52 s once, right after the million was created, with gunicorn's
processes taking the loads in turn), and every process on every web host counted the same
numbers again. The dashboard says when its numbers were counted. ``fresh`` is
``NOTIFY_DASHBOARD_FRESH_SECONDS`` for the dashboard and a fifth of it for a campaign's
progress (its bar moves); 0 reads every load live.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from notifications import selectors, statistics
from notifications.kept import codec
from notifications.kept.models import KeptCount
from notifications.models import Campaign
from notifications.selectors import CampaignProgress
from notifications.statistics import Dashboard

logger = logging.getLogger(__name__)
T = TypeVar("T")

_lock = threading.Lock()
_threads: dict[str, threading.Thread] = {}  # key → this process's thread counting it
# How long a load of the dashboard or a campaign's page waits for numbers it has none of (or
# only stale ones): then it says they are being counted (a first look, beside the cancel of
# the rest of a million, counted in the request for 12.6 s).
WAIT_SECONDS = 1.0
# How long a process counting a key holds it: one that died while counting leaves it for
# that long (the numbers meanwhile shown with their time); a count that takes longer is
# counted again beside it.
LEASE_SECONDS = 60.0
# Rows nobody has asked for in that long are deleted when a new key is first counted (a
# campaign's page not opened for a week).
FORGET_AFTER = timedelta(days=7)
POLL_SECONDS = 0.05  # how often a wait for another process's count looks at the row


def dashboard(period: str = "today") -> Dashboard | None:
    """``statistics.dashboard(period)``, kept (``NOTIFY_DASHBOARD_FRESH_SECONDS``); None
    while it is counted for the first time for longer than ``WAIT_SECONDS``."""
    period = period if period in statistics.PERIODS else "today"
    return _get(
        f"dashboard:{period}",
        lambda: statistics.dashboard(period),
        settings.NOTIFY_DASHBOARD_FRESH_SECONDS,
    )


def campaign_progress(campaign: Campaign) -> CampaignProgress | None:
    """``selectors.campaign_progress(campaign)``, kept for a fifth of the dashboard's time;
    with ``campaign`` as given (its state is the caller's, read now). None while it is
    counted for the first time for longer than ``WAIT_SECONDS``."""
    pk = campaign.pk

    def count() -> CampaignProgress:
        progress = selectors.campaign_progress(Campaign(pk=pk))
        return dataclasses.replace(progress, campaign=None)  # kept without it: given at read

    progress = _get(_campaign_key(pk), count, settings.NOTIFY_DASHBOARD_FRESH_SECONDS / 5)
    return dataclasses.replace(progress, campaign=campaign) if progress is not None else None


def outdate_campaign(campaign_id: int) -> None:
    """After an action on a campaign: its kept progress is counted again, behind, at the
    next load, which shows it as kept meanwhile (counted in the request instead, right after
    "Cancel the rest" of a million, the page took 6 s)."""
    KeptCount.objects.filter(key=_campaign_key(campaign_id)).update(
        counted_at=F("counted_at") - timedelta(seconds=settings.NOTIFY_DASHBOARD_FRESH_SECONDS)
    )


def _campaign_key(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


def _get(key: str, compute: Callable[[], T], fresh: float) -> T | None:
    """The kept value of ``key``, counted again behind when older than ``fresh``. One that
    must be counted now (none kept, or stale and unasked for, with no count under way) is
    counted behind too, the request waiting ``WAIT_SECONDS`` for it: None if there is none
    yet (a stale one is shown)."""
    if fresh <= 0:
        return compute()
    now = timezone.now()
    row = KeptCount.objects.filter(key=key).first()
    if row is None or row.value is None:
        return _wait(key, compute, row)
    stale = timedelta(seconds=settings.NOTIFY_DASHBOARD_STALE_SECONDS)
    age = now - row.counted_at
    counting = row.counting_until is not None and row.counting_until > now
    unasked = now - row.kept_at > stale  # written long ago: nobody asked for it since
    if age > stale and unasked and not counting:
        return _wait(key, compute, row)
    if age > timedelta(seconds=fresh) and not counting:
        _behind(key, compute, None)
    return codec.decode(row.value)


def _wait(key: str, compute: Callable[[], T], row: KeptCount | None) -> T | None:
    """Count ``key`` behind and wait ``WAIT_SECONDS`` for it: its numbers, else the stale
    ones of ``row``, else None."""
    _behind(key, compute, row.kept_at if row is not None else None).join(WAIT_SECONDS)
    value = KeptCount.objects.filter(key=key).values_list("value", flat=True).first()
    if value is None and row is not None:
        value = row.value
    return codec.decode(value) if value is not None else None


def _behind(key: str, compute: Callable[[], Any], seen: datetime | None) -> threading.Thread:
    """This process's thread counting ``key`` behind: the one under way, or one started now.
    ``seen`` is when the row the caller read was written: a thread that finds another
    process counting waits (``WAIT_SECONDS`` at most) for the row to be written after it."""
    with _lock:
        thread = _threads.get(key)
        if thread is not None and thread.is_alive():
            return thread
        thread = _threads[key] = threading.Thread(
            target=_refresh, args=(key, compute, seen), name=f"kept-{key}", daemon=True
        )
        thread.start()
    return thread


def _refresh(key: str, compute: Callable[[], Any], seen: datetime | None) -> None:
    try:
        if not _lease(key):
            _await_other(key, seen)
            return
        began = timezone.now()
        try:
            value = codec.encode(_serial(compute))
        except Exception:  # the kept numbers stay; the next load tries again
            KeptCount.objects.filter(key=key).update(counting_until=None)
            # A key never counted leaves no row behind (the week's clean-up goes by kept_at).
            KeptCount.objects.filter(key=key, kept_at__isnull=True).delete()
            raise
        KeptCount.objects.filter(key=key).update(
            value=value, counted_at=began, kept_at=timezone.now(), counting_until=None
        )
    except Exception:
        logger.exception("could not count %s", key)
    finally:
        connection.close()  # this thread's own


def _lease(key: str) -> bool:
    """Whether this process now holds ``key``'s lease (no other process is counting it).
    The row is made the first time its key is counted; only then are the rows nobody asked
    for in ``FORGET_AFTER`` deleted (a new key is the only way the table grows)."""
    now = timezone.now()
    free = Q(counting_until__isnull=True) | Q(counting_until__lt=now)
    take = KeptCount.objects.filter(free, key=key)
    until = now + timedelta(seconds=LEASE_SECONDS)
    if take.update(counting_until=until):
        return True
    if KeptCount.objects.filter(key=key).exists():
        return False  # another process is counting it
    KeptCount.objects.filter(kept_at__lt=now - FORGET_AFTER).delete()
    KeptCount.objects.bulk_create([KeptCount(key=key)], ignore_conflicts=True)
    return bool(take.update(counting_until=until))


def _await_other(key: str, seen: datetime | None) -> None:
    """Another process is counting ``key``: wait up to ``WAIT_SECONDS`` for its numbers (a
    row written after ``seen``)."""
    deadline = time.monotonic() + WAIT_SECONDS
    written = KeptCount.objects.filter(key=key, kept_at__isnull=False)
    if seen is not None:
        written = written.filter(kept_at__gt=seen)
    while time.monotonic() < deadline and not written.exists():
        time.sleep(POLL_SECONDS)


def _serial(compute: Callable[[], T]) -> T:
    """``compute()``, which PostgreSQL plans without parallel workers: a count behind, which
    nobody waits for, takes one core, not every core of the database's host. Once a
    million's creation has refreshed the table's statistics, PostgreSQL plans a campaign's
    progress and the dashboard as parallel scans (0.28 s on three processes instead of
    0.49 s on one, alone); on two cores beside the sending, the pages then took 1.1–1.3 s in
    the seconds after (bench-scale), and not once in a run with parallel plans off."""
    if connection.vendor != "postgresql":
        return compute()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        return compute()


def forget() -> None:
    """Drop everything kept (tests): wait for this process's counts behind, then delete the
    rows."""
    for thread in list(_threads.values()):
        thread.join(10)
    _threads.clear()
    KeptCount.objects.all().delete()
