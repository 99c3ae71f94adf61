"""``manage.py run_webhooks``: the webhook lane as a process of its own.

Each consumer (``manage.py run_huey``) starts one as its child (``webhooks.tasks``), so the
lane's work — posting, signing, recording — runs beside delivery on another core, never in
the consumers' interpreter, whose lock all its worker threads share. It can also run alone,
on any host, for consumers started with ``NOTIFY_WEBHOOK_THREADS=0``. SIGINT or SIGTERM
stops it cleanly: posts in flight finish and are recorded, untried deliveries go back.

``--parent PID``: stop when that process is gone (a consumer killed outright takes its lane
with it). ``--report``: write each post's outcome and seconds to stdout, one line each, for
the parent to count in its own metrics, instead of counting them here; the lines go out
together every ``PARENT_CHECK_SECONDS``, so the consumer wakes for them twice a second, not
once a post.

The process runs ``NOTIFY_WEBHOOK_NICE`` below the consumer's priority: webhooks never take
the cores from delivery; on a machine with cores to spare it makes no difference. Measured
(``BENCH_ONLY=webhooks make bench``): see README, "Status webhooks".
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from notifications.operations import metrics
from notifications.webhooks.lane import Lane

logger = logging.getLogger(__name__)

PARENT_CHECK_SECONDS = 0.5


class Report:
    """Each post's outcome and seconds for the consumer that started this process: a line
    each, kept until ``flush`` writes them to stdout at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: list[str] = []

    def __call__(self, outcome: str, seconds: float) -> None:
        with self._lock:
            self._lines.append(f"{outcome} {seconds:.6f}\n")

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            try:
                sys.stdout.write("".join(lines))
                sys.stdout.flush()
            except OSError:  # the consumer is gone (a broken pipe): nobody to count them
                pass


def lower_priority(steps: int) -> None:
    """Yield the CPU to delivery by ``steps`` of ``nice`` (a refusal is only logged)."""
    if steps:
        try:
            os.nice(steps)
        except OSError as err:
            logger.warning("webhook lane: could not lower its priority (%s)", err)


class Command(BaseCommand):
    help = "Send webhooks: the lane of threads that posts due deliveries, until stopped."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--threads", type=int, default=None, help="lane threads (NOTIFY_WEBHOOK_THREADS)"
        )
        parser.add_argument("--parent", type=int, default=0, help="stop when this pid is gone")
        parser.add_argument(
            "--report", action="store_true", help="write outcomes to stdout for the parent"
        )

    def handle(self, *args, threads: int | None, parent: int, report: bool, **options) -> None:
        stopping = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        lower_priority(settings.NOTIFY_WEBHOOK_NICE)
        reports = Report() if report else None
        lane = Lane(
            threads or settings.NOTIFY_WEBHOOK_THREADS or 1,
            count=reports if reports is not None else metrics.webhook_attempted,
        )
        lane.start()
        try:
            while not stopping.wait(PARENT_CHECK_SECONDS):
                if reports is not None:
                    reports.flush()
                if parent and os.getppid() != parent:
                    break  # the consumer died: its lane goes with it
            lane.stop()
        finally:
            if reports is not None:
                reports.flush()
