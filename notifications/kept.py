"""Counts over many rows, kept for a few seconds in each web process and refreshed in the
background while someone watches: the dashboard's and a campaign's progress.

Today is read live (``statistics.dashboard``), and a campaign's progress counts all its
notifications (``selectors.campaign_progress``): with a million notifications created today,
each takes seconds, and an operator who watched the dashboard or the campaign's page during a
large campaign waited for them on every load (bench-scale: the dashboard 2 s median, 30 s
worst). Here a process keeps each one's last numbers: younger than ``fresh`` seconds, they are
shown as they are; older, they are still shown while one background thread computes the next.
Only when nobody looked for ``NOTIFY_DASHBOARD_STALE_SECONDS`` and they are older than that
(or there are none) must they be counted now (unless a background count is still under
way): beside the cancel of the rest of a million a count took longer than that, and the load
after it, its numbers already that old when they were kept, counted again in the request
(13–18 s); now it shows them, with their time, and counts behind. Numbers that must be
counted now are counted behind too, the request waiting ``WAIT_SECONDS`` for them, then
showing the stale ones or, with none, saying they are being counted (a web process's first
look, beside that cancel: the dashboard 12.6 s, a campaign's page 6 s). The dashboard says
when its numbers were counted. ``fresh`` is ``NOTIFY_DASHBOARD_FRESH_SECONDS`` for the
dashboard and a fifth of it for a campaign's progress (its bar moves); 0 reads every load
live.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction

from notifications import selectors, statistics
from notifications.models import Campaign
from notifications.selectors import CampaignProgress
from notifications.statistics import Dashboard

logger = logging.getLogger(__name__)
T = TypeVar("T")

_lock = threading.Lock()
_kept: dict[Hashable, tuple[float, Any]] = {}  # key → (when computed, monotonic; the value)
_refreshing: set[Hashable] = set()  # keys a thread is computing
_looked: dict[Hashable, float] = {}  # key → when it was last asked for (monotonic)
_threads: dict[Hashable, threading.Thread] = {}  # key → the thread counting it (last started)
# How long a load of the dashboard or a campaign's page waits for numbers it has none of (or
# only stale ones): then it says they are being counted (a first look in a web process,
# beside the cancel of the rest of a million, counted in the request for 12.6 s).
WAIT_SECONDS = 1.0


def dashboard(period: str = "today") -> Dashboard | None:
    """``statistics.dashboard(period)``, kept (``NOTIFY_DASHBOARD_FRESH_SECONDS``); None
    while this process counts it for the first time for longer than ``WAIT_SECONDS``."""
    period = period if period in statistics.PERIODS else "today"
    return _get(
        ("dashboard", period),
        lambda: statistics.dashboard(period),
        settings.NOTIFY_DASHBOARD_FRESH_SECONDS,
    )


def campaign_progress(campaign: Campaign) -> CampaignProgress | None:
    """``selectors.campaign_progress(campaign)``, kept for a fifth of the dashboard's time;
    with ``campaign`` as given (its state is the caller's, read now). None while this process
    counts it for the first time for longer than ``WAIT_SECONDS``."""
    pk = campaign.pk
    progress = _get(
        ("campaign", pk),
        lambda: selectors.campaign_progress(Campaign(pk=pk)),
        settings.NOTIFY_DASHBOARD_FRESH_SECONDS / 5,
    )
    return dataclasses.replace(progress, campaign=campaign) if progress is not None else None


def outdate_campaign(campaign_id: int) -> None:
    """After an action on a campaign, in this process: its kept progress is counted again,
    behind, at the next load, which shows it as kept meanwhile (counted in the request
    instead, right after "Cancel the rest" of a million, the page took 6 s)."""
    key = ("campaign", campaign_id)
    kept = _kept.get(key)
    if kept is not None:
        _kept[key] = (kept[0] - settings.NOTIFY_DASHBOARD_FRESH_SECONDS, kept[1])


def _get(key: Hashable, compute: Callable[[], T], fresh: float) -> T | None:
    """The kept value of ``key``, refreshed behind when older than ``fresh``. One that must
    be counted now (none kept, or stale and unwatched) is counted behind too, the request
    waiting ``WAIT_SECONDS`` for it: None if there is none yet (a stale one is shown)."""
    if fresh <= 0:
        return compute()
    now = time.monotonic()
    kept = _kept.get(key)
    age = now - kept[0] if kept is not None else None
    looked, _looked[key] = _looked.get(key), now
    stale = settings.NOTIFY_DASHBOARD_STALE_SECONDS
    unwatched = looked is None or now - looked > stale  # nobody looked for a while
    if age is None or (age > stale and unwatched and key not in _refreshing):
        _behind(key, compute).join(WAIT_SECONDS)
        kept = _kept.get(key)
        return kept[1] if kept is not None else None
    if age > fresh:
        _behind(key, compute)
    return kept[1]


def _behind(key: Hashable, compute: Callable[[], Any]) -> threading.Thread:
    """The thread counting ``key`` behind: the one under way, or one started now."""
    with _lock:
        thread = _threads.get(key)
        if key in _refreshing and thread is not None:
            return thread
        _refreshing.add(key)
        thread = _threads[key] = threading.Thread(
            target=_refresh, args=(key, compute), name=f"kept-{key}", daemon=True
        )
    thread.start()
    return thread


def _refresh(key: Hashable, compute: Callable[[], Any]) -> None:
    try:
        began = time.monotonic()
        _kept[key] = (began, _serial(compute))
    except Exception:  # the kept numbers stay; the next load tries again
        logger.exception("could not count %s", key)
    finally:
        connection.close()  # this thread's own
        with _lock:
            _refreshing.discard(key)


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
    """Drop everything kept (tests)."""
    _kept.clear()
    _looked.clear()
    _threads.clear()
