"""Settings for the test suite: the service's own, minus anything a developer's machine adds.

A developer's ``.env`` (which may hold a real bot token) is not read, channels start
unconfigured (tests configure what they use), and the queue defaults to a SQLite file of its own. ``DATABASE_URL`` and
``QUEUE_URL`` from the real environment still pick the backends (CI runs both tiers).
"""

import os

os.environ["NOTIFY_SKIP_DOTENV"] = "1"
for _name in (
    "TELEGRAM_BOT_TOKEN",
    "EMAIL_HOST",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "SMSAERO_EMAIL",
    "SMSAERO_API_KEY",
    "SMS_SMTP_HOST",
    "SMS_SMTP_PASSWORD",
    "SMPP_HOST",
    "SMPP_PASSWORD",
    "NOTIFY_SMS_DAILY_LIMIT",
    "SMS_SMTP_ADDRESS",
    "EMAIL_BACKEND",
):
    os.environ[_name] = ""
# The fake SMTP servers speak plain SMTP unless a test asks for STARTTLS.
os.environ["EMAIL_USE_TLS"] = "0"
os.environ["SMS_SMTP_USE_TLS"] = "0"
# Per process, so two test runs in one checkout don't share (and delete) each other's files.
os.environ.setdefault("QUEUE_URL", f"sqlite:///var/test_huey_{os.getpid()}.sqlite3")

from notification_service.settings import *  # noqa: E402,F403

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test_db_{os.getpid()}.sqlite3")}  # noqa: F405

# Tests that call a sender in-process don't pace (pacing has tests of its own); the consumers
# the end-to-end tests start read the service's defaults.
NOTIFY_TELEGRAM_RATE = 0.0
NOTIFY_TELEGRAM_CHAT_RATE = 0.0
NOTIFY_TELEGRAM_PAID_RATE = 0.0
# The dashboard read live on every load (its cache has a test of its own).
NOTIFY_DASHBOARD_FRESH_SECONDS = 0.0
# The API's tests of throttling set their own rates.
NOTIFY_API_RATE = None
NOTIFY_API_ANON_RATE = None
# Webhook endpoints on 127.0.0.1 (the tests' receivers); the address guard's tests turn it off.
NOTIFY_WEBHOOK_ALLOW_PRIVATE = True
# Passwords hashed with MD5 in the tests: Django's default (PBKDF2) costs ~0.5 s a hash on the
# CI machine, and every test with an admin user paid it once (most of the suite's setup time).
# The service keeps Django's default; ``ensure_admin``'s test checks the password either way.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
