"""Build the huey instance from ``QUEUE_URL``.

The scheme picks the tier: ``sqlite:///path`` (embedded, the default), ``postgres://…``
(the same server as the database) or ``redis://…`` (scale-out). The queue is only a
doorbell: every notification's state lives in its database row.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from huey import Huey, PostgresHuey, PriorityRedisHuey, SqliteHuey

QUEUE_NAME = "notifications"


def huey_from_url(url: str, base_dir: Path) -> Huey:
    """A huey instance for ``url``; raises ``ImproperlyConfigured`` on an unknown scheme."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path, as dj-database-url reads them.
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path:
            raise ImproperlyConfigured(f"QUEUE_URL {url!r} names no file")
        filename = Path(path)
        if not filename.is_absolute():
            filename = base_dir / filename
        filename.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(QUEUE_NAME, filename=str(filename), results=False, timeout=30)
    if scheme in {"postgres", "postgresql"}:
        return PostgresHuey(QUEUE_NAME, dsn=url, results=False)
    if scheme in {"redis", "rediss"}:
        return PriorityRedisHuey(QUEUE_NAME, url=url, results=False)
    raise ImproperlyConfigured(
        f"QUEUE_URL scheme {scheme!r} is not supported; use sqlite:///…, postgres://… or redis://…"
    )
