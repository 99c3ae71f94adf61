"""What ``/readyz`` checks: the database answers, every migration is applied, the queue is
reachable, and some consumer's heartbeat is fresh. Cheap enough for every second: three small
queries and one queue call; the list of migrations on disk is read once per process.

Each check answers "ok" or a short fixed text. The drivers' own messages (which name hosts,
ports, database names) go to the log, never into the answer.
"""

from __future__ import annotations

import functools
import logging
import time

from django.db import DatabaseError, connection
from django.db.migrations.loader import MigrationLoader
from huey.contrib.djhuey import HUEY

from notifications.operations import heartbeat

logger = logging.getLogger(__name__)

OK = "ok"
# A failing check is logged at most this often per process (probes come every second).
LOG_EVERY_SECONDS = 60.0
_logged: dict[str, float] = {}


def _log(check: str, err: BaseException) -> None:
    now = time.monotonic()
    if now - _logged.get(check, -LOG_EVERY_SECONDS) >= LOG_EVERY_SECONDS:
        _logged[check] = now
        logger.warning("readiness check %s failed: %s: %s", check, type(err).__name__, err)


@functools.cache
def migrations_on_disk() -> frozenset[tuple[str, str]]:
    """(app label, name) of every migration the code has, squashed ones as their squash."""
    return frozenset(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)


def database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as err:
        _log("database", err)
        connection.close()
        return "unreachable"
    return OK


def migrations() -> str:
    table = connection.ops.quote_name("django_migrations")
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT app, name FROM {table}")
            applied = set(cursor.fetchall())
    except DatabaseError as err:  # no django_migrations table: nothing was ever migrated
        _log("migrations", err)
        return "not applied"
    missing = migrations_on_disk() - applied
    return f"{len(missing)} not applied" if missing else OK


def queue() -> str:
    try:
        HUEY.storage.queue_size()
    except Exception as err:  # noqa: BLE001 - each storage raises its own driver's errors
        _log("queue", err)
        return "unreachable"
    return OK


def consumer() -> str:
    try:
        fresh = heartbeat.any_fresh()
    except DatabaseError as err:
        _log("consumer", err)
        return "unknown"
    return OK if fresh else "no heartbeat in NOTIFY_READY_HEARTBEAT_SECONDS"


def readiness() -> dict[str, str]:
    """Each check's answer, by name: database, migrations, queue, consumer."""
    answers = {"database": database()}
    if answers["database"] == OK:
        answers["migrations"] = migrations()
    else:
        answers["migrations"] = "unknown"
    answers["queue"] = queue()
    answers["consumer"] = consumer() if answers["database"] == OK else "unknown"
    return answers
