"""The webhooks app's consumer hooks (djhuey imports each app's ``tasks`` module in
``run_huey``): each consumer runs a webhook lane beside it, and stops it when it stops; and
the hourly prune of old events.

The lane is a child process (``manage.py run_webhooks --parent <consumer> --report``), not
threads of the consumer: its posting, signing and recording would otherwise take turns with
the delivery workers for the one interpreter lock of the consumer's process, and every
webhook would cost delivery that much (measured: about 1 ms of CPU per webhook, half the
cost of a notification; ``make bench``, ``webhooks``). Being the consumer's child keeps its
life the consumer's: started by the first worker's start-up hook, stopped (SIGTERM: clean)
by the first shutdown hook, and gone on its own within a second if the consumer dies. It
reports each post's outcome on its stdout, and a thread here counts them in the consumer's
metrics (``notify_webhook_deliveries_total``, ``notify_webhook_delivery_seconds``), so they
are served wherever the consumer's are. ``NOTIFY_WEBHOOK_THREADS=0``: no lane here.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from django.conf import settings
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, on_shutdown, on_startup

from notifications.operations import metrics
from notifications.webhooks import outbox

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_lane: subprocess.Popen | None = None
_started = False


def _relay(lines: IO[str]) -> None:
    """Count the lane's reported posts (``<outcome> <seconds>`` lines) until it ends."""
    for line in lines:
        outcome, _, seconds = line.strip().partition(" ")
        try:
            metrics.webhook_attempted(outcome, float(seconds))
        except ValueError:
            logger.warning("webhook lane: unreadable report %r", line[:100])


@on_startup()
def start_webhook_lane() -> None:
    """Start this consumer's webhook lane, once per process."""
    global _lane, _started
    with _lock:
        if _started or not settings.NOTIFY_WEBHOOK_THREADS:
            _started = True
            return
        _started = True
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        _lane = subprocess.Popen(
            [
                sys.executable,
                manage,
                "run_webhooks",
                "--threads",
                str(settings.NOTIFY_WEBHOOK_THREADS),
                "--parent",
                str(os.getpid()),
                "--report",
            ],
            cwd=settings.BASE_DIR,
            stdout=subprocess.PIPE,
            text=True,
            # Not in the consumer's process group: a Ctrl-C meant for the consumer (runservice
            # signals the group) must not interrupt the lane while it starts; the consumer
            # stops it (SIGTERM), or it sees its consumer gone.
            start_new_session=True,
        )
        assert _lane.stdout is not None
        threading.Thread(
            target=_relay, args=(_lane.stdout,), name="webhook-lane-report", daemon=True
        ).start()
        logger.info("webhook lane started (process %s)", _lane.pid)


@on_shutdown()
def stop_webhook_lane() -> None:
    """Stop the lane cleanly: posts in flight finish and are recorded, untried ones go back."""
    global _lane
    with _lock:
        lane, _lane = _lane, None
    if lane is None or lane.poll() is not None:
        return
    lane.terminate()
    try:
        lane.wait(timeout=settings.NOTIFY_WEBHOOK_TIMEOUT + 10)
    except subprocess.TimeoutExpired:
        lane.kill()
        lane.wait()


@db_periodic_task(crontab(minute="57"))
def prune_webhook_events() -> dict[str, int]:
    """Hourly: delete events whose deliveries all ended over ``NOTIFY_WEBHOOK_EVENT_DAYS``
    ago (``outbox.prune``)."""
    return outbox.prune()
