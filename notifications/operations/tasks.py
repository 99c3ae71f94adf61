"""The consumer's start-up and shutdown hooks of the operations app (djhuey imports each
app's ``tasks`` module in ``run_huey``): the heartbeat, and the metrics port; and its hourly
task, retention's prune.

huey calls a start-up hook in every worker thread as it starts: each call counts one worker,
the first also starts the heartbeat and (``NOTIFY_METRICS_PORT``) the metrics server. The
first shutdown hook stops them and deletes the heartbeat row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.conf import settings
from huey import crontab
from huey.consumer import Consumer
from huey.contrib.djhuey import HUEY, db_periodic_task, on_shutdown, on_startup

from notifications import tasks
from notifications.operations import exposition, retention
from notifications.operations.heartbeat import Heartbeat

_lock = threading.Lock()
_workers = 0
_told = 0  # the worker threads this consumer was told to run (``-w``, else NOTIFY_WORKERS)
_server = None


def _remember_workers(create: Callable[..., Consumer]) -> Callable[..., Consumer]:
    """``HUEY.create_consumer``, noting how many worker threads the consumer will run: the
    first heartbeat is written as the first of them starts, and must count them all, or the
    web sizes a click's doorbells for one thread (a few huge batches for 32 threads)."""

    def create_consumer(**options) -> Consumer:
        global _told
        consumer = create(**options)
        _told = consumer.workers
        return consumer

    return create_consumer


HUEY.create_consumer = _remember_workers(HUEY.create_consumer)


def workers() -> int:
    """How many worker threads this consumer has: those started, and while they start, as
    many as it was told to run."""
    return max(_workers, _told)


heartbeat = Heartbeat(workers=workers, paced_threads=tasks.lane_threads)


@on_startup()
def start_operations() -> None:
    """Count this worker; the first one starts the heartbeat and the metrics port."""
    global _workers, _server
    with _lock:
        _workers += 1
        first = _workers == 1
        if first and settings.NOTIFY_METRICS_PORT:
            _server = exposition.serve(settings.NOTIFY_METRICS_PORT, settings.NOTIFY_METRICS_BIND)
    if first:
        heartbeat.start()


@on_shutdown()
def stop_operations() -> None:
    """Stop the heartbeat (its row deleted) and the metrics port; once per process."""
    global _server
    heartbeat.stop()
    with _lock:
        server, _server = _server, None
    if server is not None:
        server.shutdown()
        server.server_close()


@db_periodic_task(crontab(minute="37"))
def prune_old() -> dict[str, object]:
    """Hourly, ten minutes after the dashboard's rollup: delete what has outlived
    ``NOTIFY_RETENTION_DAYS`` (``operations.retention``), for at most
    ``NOTIFY_RETENTION_SECONDS``."""
    return retention.prune().as_dict()
