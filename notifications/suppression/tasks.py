"""The suppression app's tasks (djhuey imports each app's ``tasks`` module): working off the
email provider's events, and forgetting what has outlived its window."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from notifications.suppression import services, tracking


@db_task(retries=3, retry_delay=5)
def process_events(event_ids: list[int]) -> dict[str, int]:
    """Work off the stored events ``event_ids`` (rung by the webhook's receiver)."""
    return tracking.process(event_ids)


@db_periodic_task(crontab(minute="*"))
def process_waiting_events() -> dict[str, int]:
    """Every minute: events whose doorbell was lost, and deliveries that came before their
    send was recorded."""
    return tracking.process()


@db_periodic_task(crontab(minute="47"))
def prune_suppressions() -> dict[str, int]:
    """Hourly: soft bounces past ``NOTIFY_SOFT_BOUNCE_DAYS`` and suppressions lifted more
    than ``NOTIFY_RETENTION_DAYS`` ago (``services.prune``)."""
    return services.prune()
