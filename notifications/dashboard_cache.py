"""The dashboard's numbers, kept for a few seconds in each web process and refreshed in the
background while someone watches.

Today is read live (``statistics.dashboard``): with a million notifications created today,
that scan takes seconds, and an operator who opens the dashboard during a large campaign
waited for it on every load (bench-scale: 2 s median, 30 s worst while the campaign was being
cancelled). Here a process keeps each period's last numbers: younger than
``NOTIFY_DASHBOARD_FRESH_SECONDS``, they are shown as they are; older, they are still shown
while one background thread computes the next; older than ``NOTIFY_DASHBOARD_STALE_SECONDS``
(nobody looked for a while), the request computes them itself. The page says when they were
counted. ``NOTIFY_DASHBOARD_FRESH_SECONDS=0`` reads every load live.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import connection
from django.utils import timezone

from notifications import statistics
from notifications.statistics import Dashboard

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_kept: dict[str, Dashboard] = {}  # period → its last numbers
_refreshing: set[str] = set()  # periods a thread is computing


def dashboard(period: str = "today") -> Dashboard:
    """``statistics.dashboard(period)``, at most ``NOTIFY_DASHBOARD_FRESH_SECONDS`` old when
    it was last computed (older: the kept numbers, while the next are computed behind)."""
    fresh_for = settings.NOTIFY_DASHBOARD_FRESH_SECONDS
    if fresh_for <= 0:
        return statistics.dashboard(period)
    period = period if period in statistics.PERIODS else "today"
    kept = _kept.get(period)
    age = (timezone.now() - kept.now).total_seconds() if kept is not None else None
    if age is None or age > settings.NOTIFY_DASHBOARD_STALE_SECONDS:
        kept = _kept[period] = statistics.dashboard(period)
        return kept
    if age > fresh_for:
        with _lock:
            start = period not in _refreshing
            _refreshing.add(period)
        if start:
            threading.Thread(
                target=_refresh, args=(period,), name=f"dashboard-{period}", daemon=True
            ).start()
    return kept


def _refresh(period: str) -> None:
    try:
        _kept[period] = statistics.dashboard(period)
    except Exception:  # the kept numbers stay; the next load tries again
        logger.exception("the dashboard's %s numbers could not be computed", period)
    finally:
        connection.close()  # this thread's own
        with _lock:
            _refreshing.discard(period)


def forget() -> None:
    """Drop the kept numbers (tests)."""
    _kept.clear()
