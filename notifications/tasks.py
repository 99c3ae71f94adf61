"""huey tasks: thin wrappers that load by id and call the delivery service.

Each consumer thread keeps its database connection from task to task: checking or reopening
it for every notification cost a round trip each time. A task that fails on a broken
connection closes it, so the next task (or huey's retry) reconnects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, connection
from huey import crontab
from huey.contrib.djhuey import HUEY, periodic_task, task

from notifications import delivery, services


def _with_connections(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def inner(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (OperationalError, InterfaceError):
            connection.close()
            raise

    return inner


@task(retries=3, retry_delay=2)
@_with_connections
def deliver_notification(notification_id: int) -> str | None:
    """Deliver one notification, if it is still queued and due (anyone else's is skipped)."""
    return delivery.notification_deliver(notification_id=notification_id)


@task(retries=3, retry_delay=2)
@_with_connections
def dispatch_due() -> int:
    """Ring the doorbell of every queued notification that is due now."""
    ids = services.due_notification_ids()
    services.ring_doorbell(ids)
    return len(ids)


@periodic_task(crontab(minute="*"))
@_with_connections
def sweep() -> dict[str, int]:
    """Every minute: re-queue expired leases, re-ring lost doorbells."""
    return services.notifications_sweep()


def pending_in_queue() -> int:
    """How many messages wait in the queue (not counting scheduled ones)."""
    return HUEY.pending_count()
