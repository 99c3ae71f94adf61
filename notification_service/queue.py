"""The huey configuration from ``QUEUE_URL``.

The scheme picks the tier: ``sqlite:///path`` (embedded, the default), ``postgres://…``
(the same server as the database) or ``redis://…`` (scale-out). The queue is only a
doorbell: every notification's state lives in its database row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from huey import Huey
from huey.utils import load_class

QUEUE_NAME = "notifications"


def queue_config(url: str, base_dir: Path, *, workers: int = 8) -> dict[str, Any]:
    """djhuey's ``HUEY`` setting for ``url``; raises ``ImproperlyConfigured`` on an unknown
    scheme.

    The consumer's defaults (``manage.py run_huey`` with no options) are the service's:
    ``workers`` threads, and an idle worker polls the queue at least once a second (huey's
    default backs off to 10 s on SQLite and PostgreSQL queues, which would delay a
    notification by as much after a quiet spell).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    config: dict[str, Any] = {
        "name": QUEUE_NAME,
        "results": False,
        "immediate": False,
        "consumer": {"workers": workers, "worker_type": "thread", "max_delay": 1.0},
    }
    if scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path, as dj-database-url reads them.
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise ImproperlyConfigured(f"QUEUE_URL {url!r} names no file")
        filename = Path(path)
        if not filename.is_absolute():
            filename = base_dir / filename
        filename.parent.mkdir(parents=True, exist_ok=True)
        return {**config, "huey_class": "huey.SqliteHuey", "filename": str(filename), "timeout": 30}
    if scheme in {"postgres", "postgresql"}:
        return {**config, "huey_class": "huey.PostgresHuey", "dsn": url}
    if scheme in {"redis", "rediss"}:
        return {**config, "huey_class": "huey.PriorityRedisHuey", "url": url}
    raise ImproperlyConfigured(
        f"QUEUE_URL scheme {scheme!r} is not supported; use sqlite:///…, postgres://… or redis://…"
    )


def huey_from_url(url: str, base_dir: Path) -> Huey:
    """The huey instance ``queue_config`` describes (what djhuey builds from it)."""
    config = dict(queue_config(url, base_dir))
    config.pop("consumer")
    cls = load_class(config.pop("huey_class"))
    return cls(config.pop("name"), **config)
