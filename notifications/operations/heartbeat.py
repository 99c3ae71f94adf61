"""Consumers say they are alive: each consumer process keeps one ``ConsumerHeartbeat`` row
fresh from a small thread of its own (every ``BEAT_SECONDS``), with how many worker and paced
threads it runs, and deletes it when it stops cleanly. ``/readyz`` asks whether one is fresher
than ``NOTIFY_READY_HEARTBEAT_SECONDS``; rows of consumers that died are pruned after
``KEEP_SECONDS``. ``live_workers`` adds up the worker threads of the consumers alive now: what
a bulk send's doorbells are sized for (``tasks._batch_size``), so hosts may come and go with
no setting to match by hand.

The thread holds one database connection of its own. A database that is down is logged and
tried again at the next beat: a heartbeat never stops a consumer.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.db.models import Sum
from django.utils import timezone

from notifications.operations.models import ConsumerHeartbeat

logger = logging.getLogger(__name__)

BEAT_SECONDS = 5.0
KEEP_SECONDS = 3600.0
PRUNE_EVERY_SECONDS = 60.0


def fresh_since(now: datetime | None = None) -> datetime:
    """A heartbeat seen after this is fresh (``NOTIFY_READY_HEARTBEAT_SECONDS``)."""
    now = now or timezone.now()
    return now - timedelta(seconds=settings.NOTIFY_READY_HEARTBEAT_SECONDS)


def any_fresh(now: datetime | None = None) -> bool:
    """Whether some consumer reported alive recently (one indexed query)."""
    return ConsumerHeartbeat.objects.filter(seen_at__gt=fresh_since(now)).exists()


# How long a process trusts its last count of the live consumers' workers.
LIVE_CACHE_SECONDS = 5.0
_live: tuple[float, int] | None = None


def live_workers(now: datetime | None = None, *, cached: bool = True) -> int:
    """The worker threads of the consumers alive now (heartbeats fresher than
    ``NOTIFY_READY_HEARTBEAT_SECONDS``); 0 when none is. One query over a row per consumer,
    at most every ``LIVE_CACHE_SECONDS`` per process (``cached=False``: now)."""
    global _live
    clock = time.monotonic()
    if cached and _live is not None and clock - _live[0] < LIVE_CACHE_SECONDS:
        return _live[1]
    total = ConsumerHeartbeat.objects.filter(seen_at__gt=fresh_since(now)).aggregate(
        total=Sum("workers")
    )["total"]
    _live = (clock, int(total or 0))
    return _live[1]


def forget_live() -> None:
    """Drop the cached count (tests)."""
    global _live
    _live = None


def prune(now: datetime | None = None) -> int:
    """Delete the rows of consumers not seen for ``KEEP_SECONDS``; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(seconds=KEEP_SECONDS)
    deleted, _ = ConsumerHeartbeat.objects.filter(seen_at__lt=cutoff).delete()
    return deleted


class Heartbeat:
    """This process's heartbeat: ``start()`` writes the first beat and starts the thread,
    ``stop()`` ends it and deletes the row. Both may be called more than once."""

    def __init__(self, workers: Callable[[], int], paced_threads: Callable[[], int]) -> None:
        self.workers = workers
        self.paced_threads = paced_threads
        self.pk: int | None = None
        self.started_at = timezone.now()
        self._pruned = 0.0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> None:
        """Write one beat (the row again if it was pruned meanwhile); raises
        ``DatabaseError`` when the database does."""
        now = timezone.now()
        counts = {"workers": self.workers(), "paced_threads": self.paced_threads()}
        if self.pk is None or not ConsumerHeartbeat.objects.filter(pk=self.pk).update(
            seen_at=now, **counts
        ):
            self.pk = ConsumerHeartbeat.objects.create(
                host=socket.gethostname()[:255],
                pid=os.getpid(),
                started_at=self.started_at,
                seen_at=now,
                **counts,
            ).pk
        if time.monotonic() - self._pruned >= PRUNE_EVERY_SECONDS:
            self._pruned = time.monotonic()
            prune(now)

    def _beat_logged(self) -> None:
        close_old_connections()
        try:
            self.beat()
        except DatabaseError as err:
            logger.warning("consumer heartbeat not written (%s); trying again", err)
            connection.close()

    def _run(self) -> None:
        while not self._stopping.wait(BEAT_SECONDS):
            self._beat_logged()
        connection.close()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._beat_logged()
            self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._stopping.set()
            thread.join()
            if self.pk is not None:
                try:
                    ConsumerHeartbeat.objects.filter(pk=self.pk).delete()
                except DatabaseError:
                    logger.warning("consumer heartbeat not removed; it goes stale and is pruned")
                self.pk = None
