"""The receiver of django-anymail's ``tracking`` signal, sent by anymail's webhook views
(mounted at ``/anymail/``, ``notifications.suppression.urls``) for each event an email
provider posts.

It does as anymail's docs advise: store the event (one row) and return, leaving the work to
a task (rung once the row is committed; the task that runs every minute picks up any whose
doorbell was lost). It never answers a well-formed event with an error: one that can't be
read is logged and acknowledged. Only a database that is down or locked makes the webhook
fail (500), so the provider sends the event again later.
"""

from __future__ import annotations

import logging
from typing import Any

from anymail.signals import AnymailTrackingEvent, tracking
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction

from notifications.suppression import tasks
from notifications.suppression import tracking as tracking_events

logger = logging.getLogger(__name__)

DISPATCH_UID = "notifications.suppression.on_tracking"


def connect() -> None:
    """Connect ``on_tracking`` to anymail's signal (once, from the app's ``ready``)."""
    tracking.connect(on_tracking, dispatch_uid=DISPATCH_UID)


def on_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    """Store ``event`` and ring for the task that works it off. Raises only
    ``OperationalError`` or ``InterfaceError`` (the database is down or locked)."""
    if not (getattr(settings, "ANYMAIL", None) or {}).get("WEBHOOK_SECRET"):
        # anymail's views accept anyone without a secret: nothing from them is believed.
        logger.warning("%s tracking event ignored: ANYMAIL_WEBHOOK_SECRET is not set", esp_name)
        return
    try:
        stored = tracking_events.inbox_write(event, esp_name)
    except (OperationalError, InterfaceError):
        raise
    except Exception:
        logger.exception("%s tracking event not stored; acknowledged all the same", esp_name)
        return
    if stored is not None:
        pk = stored.pk
        transaction.on_commit(lambda: _ring(pk))


def _ring(pk: int) -> None:
    try:
        tasks.process_events([pk])
    except Exception:  # the row is committed: the minute's task works it off
        logger.warning(
            "queue unavailable: email provider event %s is worked off by the next minute's task",
            pk,
            exc_info=True,
        )
