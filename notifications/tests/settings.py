"""Settings for the test suite: the service's own, minus anything a developer's machine adds.

A developer's ``.env`` (which may hold a real bot token) is not read, channels start
unconfigured (tests configure what they use), and the queue defaults to a SQLite file of its own. ``DATABASE_URL`` and
``QUEUE_URL`` from the real environment still pick the backends (CI runs both tiers).
"""

import os

os.environ["NOTIFY_SKIP_DOTENV"] = "1"
for _name in ("TELEGRAM_BOT_TOKEN", "EMAIL_HOST", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD"):
    os.environ[_name] = ""
os.environ.setdefault("QUEUE_URL", "sqlite:///var/test_huey.sqlite3")

from notification_service.settings import *  # noqa: E402,F403
