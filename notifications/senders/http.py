"""The one pooled HTTP session every HTTP sender uses."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter

_session: requests.Session | None = None


def http_session() -> requests.Session:
    """A process-wide ``requests.Session`` whose pool fits many worker threads."""
    global _session
    if _session is None:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=64, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = "notification-service/1.0"
        _session = session
    return _session
