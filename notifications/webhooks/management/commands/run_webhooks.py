"""``manage.py run_webhooks``: the webhook lane as a process of its own.

Each consumer (``manage.py run_huey``) starts one as its child (``webhooks.tasks``), so the
lane's work — posting, signing, recording — runs beside delivery on another core, never in
the consumers' interpreter, whose lock all its worker threads share. It can also run alone,
on any host, for consumers started with ``NOTIFY_WEBHOOK_THREADS=0``. SIGINT or SIGTERM
stops it cleanly: posts in flight finish and are recorded, untried deliveries go back.

``--parent PID``: stop when that process is gone (a consumer killed outright takes its lane
with it). ``--report``: write each post's outcome and seconds to stdout, one line each, for
the parent to count in its own metrics, instead of counting them here.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from notifications.operations import metrics
from notifications.webhooks.lane import Lane

PARENT_CHECK_SECONDS = 0.5


def report_to_parent(outcome: str, seconds: float) -> None:
    """One line per post on stdout, read by the consumer that started this process."""
    sys.stdout.write(f"{outcome} {seconds:.6f}\n")
    sys.stdout.flush()


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
        count = report_to_parent if report else metrics.webhook_attempted
        lane = Lane(threads or settings.NOTIFY_WEBHOOK_THREADS or 1, count=count)
        lane.start()
        while not stopping.wait(PARENT_CHECK_SECONDS):
            if parent and os.getppid() != parent:
                break  # the consumer died: its lane goes with it
        lane.stop()
