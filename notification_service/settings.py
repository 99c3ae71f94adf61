"""Django settings for the notification service.

Everything is read from the environment; a ``.env`` file beside ``manage.py`` is loaded
first and real environment variables win over it. ``.env.example`` lists every variable.
"""

from __future__ import annotations

import os
import re
import secrets
from decimal import Decimal
from pathlib import Path

import dj_database_url
from csp.constants import NONE as CSP_NONE
from csp.constants import SELF as CSP_SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from dotenv import load_dotenv

from notification_service.env import (
    env_bool,
    env_choice,
    env_decimal,
    env_float,
    env_int,
    env_list,
    env_rate,
    env_str,
)
from notification_service.queue import queue_config
from notifications.preferences.quiet_hours import read_window

BASE_DIR = Path(__file__).resolve().parent.parent
if not env_bool("NOTIFY_SKIP_DOTENV", False):
    load_dotenv(BASE_DIR / ".env", override=False)

VAR_DIR = Path(env_str("NOTIFY_VAR_DIR") or BASE_DIR / "var")
# var/ holds the SQLite database, the queue and the generated secret key: only its owner may
# read it (0700), and the files the service creates in it are 0600.
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
VAR_DIR.chmod(0o700)


def private_file(path: Path) -> Path:
    """``path``, created empty with mode 0600 if missing (SQLite gives its -wal and -shm
    files the database file's mode, so they stay private too)."""
    if not path.exists():
        path.touch(mode=0o600)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return path


def _secret_key() -> str:
    """DJANGO_SECRET_KEY, or a random key generated once and kept in var/secret_key.

    Several web hosts must share one DJANGO_SECRET_KEY, or a session signed by one host is
    refused by the next.
    """
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        return key
    path = private_file(VAR_DIR / "secret_key")
    if not path.read_text().strip():
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
if _bad_origins := [o for o in CSRF_TRUSTED_ORIGINS if "://" not in o]:
    raise ImproperlyConfigured(
        "DJANGO_CSRF_TRUSTED_ORIGINS takes origins with their scheme, e.g. "
        f"https://notify.example.com; got {', '.join(_bad_origins)}"
    )
PORT = env_int("PORT", 8000, minimum=1)

# --- HTTPS (production) -----------------------------------------------------------------------
# DJANGO_HTTPS=1 when users reach the service over HTTPS: secure cookies, redirect to HTTPS
# and HSTS. Behind a TLS-terminating proxy also set DJANGO_BEHIND_PROXY=1, so Django trusts
# the proxy's X-Forwarded-Proto header (only if the proxy always sets it).
HTTPS = env_bool("DJANGO_HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("DJANGO_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
if env_bool("DJANGO_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Settings whose values the debug error page must never show: Django's defaults plus the URLs
# that carry database and queue passwords.
DEFAULT_EXCEPTION_REPORTER_FILTER = "notifications.redaction.SettingsRedactingFilter"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "huey.contrib.djhuey",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "notifications",
    "notifications.operations",
    "notifications.preferences",
    "notifications.webhooks",
    # django-anymail's webhook views (/anymail/) and the tracking signal they send.
    "anymail",
    "notifications.suppression",
    "notifications.broadcast",
    "notifications.kept",
]

MIDDLEWARE = [
    # /healthz, /readyz and /metrics, answered before anything else (no host check, no
    # HTTPS redirect, no session): notifications.operations.views.
    "notifications.operations.views.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The operator's language: the admin's switcher (a cookie), else the browser's, else
    # LANGUAGE_CODE.
    "django.middleware.locale.LocaleMiddleware",
    # ... except the HTTP API, which answers developers in English.
    "notifications.api.language.ApiInEnglishMiddleware",
    # ... and throttles the browsable API's login per address (NOTIFY_API_ANON_RATE).
    "notifications.api.throttling.LoginThrottleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy on every page (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
]

# Content-Security-Policy: scripts, styles, fonts and data only from this service; no inline
# script or style, no plugins, no framing. A text that slips past the checks into a page can't
# run. The API's ReDoc page adds what ReDoc needs (notifications.api.urls). Previews of email
# HTML are sandboxed iframes, and their remote images are not loaded.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [CSP_SELF],
        "script-src": [CSP_SELF],
        "style-src": [CSP_SELF],
        "img-src": [CSP_SELF, "data:"],
        "font-src": [CSP_SELF, "data:"],
        "connect-src": [CSP_SELF],
        "object-src": [CSP_NONE],
        "base-uri": [CSP_NONE],
        "form-action": [CSP_SELF],
        "frame-ancestors": [CSP_NONE],
    }
}

ROOT_URLCONF = "notification_service.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The project's overrides of the admin's own templates (base_site.html: the language
        # switcher and the dashboard link).
        "DIRS": [BASE_DIR / "notification_service" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "notification_service.wsgi.application"
# An operator may tick thousands of rows on a changelist page for a bulk action.
DATA_UPLOAD_MAX_NUMBER_FIELDS = env_int(
    "DJANGO_DATA_UPLOAD_MAX_NUMBER_FIELDS", 20_000, minimum=1000
)

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{private_file(VAR_DIR / 'db.sqlite3')}"
_database = dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # Many consumer threads and the web process write at once: WAL, BEGIN IMMEDIATE and a
    # generous busy timeout turn "database is locked" into a short wait.
    _database["CONN_MAX_AGE"] = 0
    _database["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests run the real consumer in another process, so the test database must be a file.
    _database["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Queue ----------------------------------------------------------------------------------
QUEUE_URL = env_str("QUEUE_URL") or f"sqlite:///{private_file(VAR_DIR / 'huey.sqlite3')}"
HUEY = queue_config(QUEUE_URL, BASE_DIR, workers=env_int("NOTIFY_WORKERS", 8, minimum=1))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The admin speaks Russian and English; DJANGO_LANGUAGE_CODE is the default (and the language
# of templates for recipients whose contact names none). Catalogues: locale/, compiled by
# `manage.py compile_translations` (make run and make test do it).
LANGUAGES = [("en", _("English")), ("ru", _("Russian"))]
LANGUAGE_CODE = env_str("DJANGO_LANGUAGE_CODE", "en").lower()
if LANGUAGE_CODE not in dict(LANGUAGES):
    raise ImproperlyConfigured(f"DJANGO_LANGUAGE_CODE must be en or ru; got {LANGUAGE_CODE!r}")
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve the admin's static files straight from the apps, so `make run` needs no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Channels -------------------------------------------------------------------------------
TELEGRAM_BOT_TOKEN = env_str("TELEGRAM_BOT_TOKEN")
TELEGRAM_API_URL = env_str("TELEGRAM_API_URL", "https://api.telegram.org").rstrip("/")
# How the bot hears users (/start links, /stop, blocks): "webhook" (Telegram POSTs to
# NOTIFY_PUBLIC_URL/telegram/webhook/), "poll" (manage.py telegram_poll, started by `make run`)
# or "off".
TELEGRAM_UPDATES = env_str("TELEGRAM_UPDATES", "poll").lower()
if TELEGRAM_UPDATES not in {"webhook", "poll", "off"}:
    raise ImproperlyConfigured(
        f"TELEGRAM_UPDATES must be webhook, poll or off; got {TELEGRAM_UPDATES!r}"
    )
TELEGRAM_WEBHOOK_SECRET = env_str("TELEGRAM_WEBHOOK_SECRET")
if TELEGRAM_WEBHOOK_SECRET and not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", TELEGRAM_WEBHOOK_SECRET):
    raise ImproperlyConfigured(
        "TELEGRAM_WEBHOOK_SECRET must be 16 to 256 characters of A-Z a-z 0-9 _ - (Telegram's "
        "rule), e.g. from: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )
if TELEGRAM_UPDATES == "webhook" and not TELEGRAM_WEBHOOK_SECRET:
    raise ImproperlyConfigured("TELEGRAM_UPDATES=webhook needs TELEGRAM_WEBHOOK_SECRET")
# The bot's @username for invite links; blank: asked of Telegram (getMe) and cached.
TELEGRAM_BOT_USERNAME = env_str("TELEGRAM_BOT_USERNAME").lstrip("@")
if TELEGRAM_BOT_USERNAME and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{3,31}", TELEGRAM_BOT_USERNAME):
    raise ImproperlyConfigured(
        f"TELEGRAM_BOT_USERNAME must be a bot's username such as my_service_bot; "
        f"got {TELEGRAM_BOT_USERNAME!r}"
    )
# Seconds a Telegram invite link (/start token) stays valid; each works once.
NOTIFY_TELEGRAM_INVITE_TTL = env_float("NOTIFY_TELEGRAM_INVITE_TTL", 7 * 86_400.0, minimum=60)

# Any Django email backend: SMTP by default, or e.g. django-anymail's for SES, Mailgun, …
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or "django.core.mail.backends.smtp.EmailBackend"
# A django-anymail backend's settings, from ANYMAIL_<NAME> variables: ANYMAIL_POSTMARK_SERVER_TOKEN
# becomes ANYMAIL["POSTMARK_SERVER_TOKEN"].
ANYMAIL = {
    name.removeprefix("ANYMAIL_"): value.strip()
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_") and value.strip()
}
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", EMAIL_PORT == 465)
# STARTTLS by default, so a login never crosses the network in plain text by accident.
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", not EMAIL_USE_SSL)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive; set one")
EMAIL_TIMEOUT = env_float("EMAIL_TIMEOUT", 10.0, minimum=0.1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "notifications@localhost")
# Each worker keeps its mail connection open between messages: it is checked (SMTP NOOP)
# before use when idle this many seconds, and renewed after this many messages (0: only when
# the server closes it; a 421 before a message is sent reconnects and sends it again).
NOTIFY_SMTP_CHECK_IDLE_SECONDS = env_float("NOTIFY_SMTP_CHECK_IDLE_SECONDS", 5.0, minimum=0)
NOTIFY_SMTP_MESSAGES_PER_CONNECTION = env_int("NOTIFY_SMTP_MESSAGES_PER_CONNECTION", 0, minimum=0)

# --- Bounces and complaints (notifications/suppression) ---------------------------------------
# The basic-auth credentials ("user:password") the email provider's tracking webhook sends to
# /anymail/<provider>/tracking/ (anymail's WEBHOOK_SECRET). Blank: those URLs answer 404.
_webhook_secret = env_str("ANYMAIL_WEBHOOK_SECRET")
if _webhook_secret:
    if not re.fullmatch(r"[^:\s]+:\S+", _webhook_secret):
        raise ImproperlyConfigured(
            "ANYMAIL_WEBHOOK_SECRET must be user:password, e.g. from: python -c 'import secrets; "
            'print(secrets.token_urlsafe(12) + ":" + secrets.token_urlsafe(24))\''
        )
    ANYMAIL["WEBHOOK_SECRET"] = _webhook_secret
# Soft bounces (a full mailbox, a server that defers) of one address within
# NOTIFY_SOFT_BOUNCE_DAYS that suppress it, as one hard bounce does at once.
NOTIFY_SOFT_BOUNCE_LIMIT = env_int("NOTIFY_SOFT_BOUNCE_LIMIT", 3, minimum=1)
NOTIFY_SOFT_BOUNCE_DAYS = env_int("NOTIFY_SOFT_BOUNCE_DAYS", 7, minimum=1)

# --- SMS ------------------------------------------------------------------------------------
NOTIFY_SMS_TRANSPORTS = env_list("NOTIFY_SMS_TRANSPORTS", "api,smtp,smpp")
if _unknown := set(NOTIFY_SMS_TRANSPORTS) - {"api", "smtp", "smpp"}:
    raise ImproperlyConfigured(
        f"NOTIFY_SMS_TRANSPORTS may name api, smtp, smpp; got {', '.join(sorted(_unknown))}"
    )
NOTIFY_SMS_DAILY_LIMIT = env_int("NOTIFY_SMS_DAILY_LIMIT", None, minimum=0)
# What a notification does when SMS is its only way left and today's limit is used up:
# "wait" for the next day (a round), or "fail" at once with the reason.
NOTIFY_SMS_LIMIT_POLICY = env_str("NOTIFY_SMS_LIMIT_POLICY", "wait").lower()
if NOTIFY_SMS_LIMIT_POLICY not in {"wait", "fail"}:
    raise ImproperlyConfigured(
        f"NOTIFY_SMS_LIMIT_POLICY must be wait or fail; got {NOTIFY_SMS_LIMIT_POLICY!r}"
    )

# What one SMS segment costs, for the campaign preview's estimate (e.g. 4.95); blank: no estimate.
NOTIFY_SMS_PRICE = env_decimal("NOTIFY_SMS_PRICE", None, minimum=Decimal(0))
NOTIFY_SMS_CURRENCY = env_str("NOTIFY_SMS_CURRENCY", "RUB")

SMSAERO_EMAIL = env_str("SMSAERO_EMAIL")
SMSAERO_API_KEY = env_str("SMSAERO_API_KEY")
SMSAERO_SIGN = env_str("SMSAERO_SIGN", "SMS Aero")
SMSAERO_API_URL = env_str("SMSAERO_API_URL")
SMSAERO_TEST_MODE = env_bool("SMSAERO_TEST_MODE", False)

# A generic email-to-SMS gateway: a mail to an address made from the phone number.
SMS_SMTP_HOST = env_str("SMS_SMTP_HOST")
SMS_SMTP_PORT = env_int("SMS_SMTP_PORT", 587, minimum=1)
SMS_SMTP_USER = env_str("SMS_SMTP_USER")
SMS_SMTP_PASSWORD = env_str("SMS_SMTP_PASSWORD")
SMS_SMTP_USE_SSL = env_bool("SMS_SMTP_USE_SSL", SMS_SMTP_PORT == 465)
SMS_SMTP_USE_TLS = env_bool("SMS_SMTP_USE_TLS", not SMS_SMTP_USE_SSL)
if SMS_SMTP_USE_TLS and SMS_SMTP_USE_SSL:
    raise ImproperlyConfigured("SMS_SMTP_USE_TLS and SMS_SMTP_USE_SSL are mutually exclusive")
if env_str("SMS_SMTP_DOMAIN") and not env_str("SMS_SMTP_ADDRESS"):
    raise ImproperlyConfigured(
        "SMS_SMTP_DOMAIN is replaced by SMS_SMTP_ADDRESS, a template such as "
        "{digits}@" + env_str("SMS_SMTP_DOMAIN") + "; set that instead"
    )
# Where the gateway takes mail for a number: {digits} (79161234567) or {phone} (+79161234567).
SMS_SMTP_ADDRESS = env_str("SMS_SMTP_ADDRESS")
if SMS_SMTP_ADDRESS and (
    "@" not in SMS_SMTP_ADDRESS
    or ("{digits}" not in SMS_SMTP_ADDRESS and "{phone}" not in SMS_SMTP_ADDRESS)
):
    raise ImproperlyConfigured(
        "SMS_SMTP_ADDRESS must be an address template with {digits} or {phone}, "
        f"e.g. {{digits}}@sms.example.net; got {SMS_SMTP_ADDRESS!r}"
    )
# The subject of gateway mails: a template with {sign} (SMSAERO_SIGN) and {digits}; blank is
# allowed. Gateways differ: some take the sender name there, some a password, some nothing.
SMS_SMTP_SUBJECT = env_str("SMS_SMTP_SUBJECT", "{sign}")
SMS_SMTP_PROVIDER = env_str("SMS_SMTP_PROVIDER", "email-to-SMS gateway")
SMS_SMTP_FROM = env_str("SMS_SMTP_FROM")
# The longest text the gateway takes, in characters (0: only SMS's own 255-part limit).
SMS_SMTP_MAX_LENGTH = env_int("SMS_SMTP_MAX_LENGTH", 0, minimum=0)

SMPP_HOST = env_str("SMPP_HOST")
SMPP_PORT = env_int("SMPP_PORT", 2775, minimum=1)
SMPP_SYSTEM_ID = env_str("SMPP_SYSTEM_ID")
SMPP_PASSWORD = env_str("SMPP_PASSWORD")
SMPP_SOURCE_ADDR = env_str("SMPP_SOURCE_ADDR")
SMPP_TIMEOUT = env_float("SMPP_TIMEOUT", 0.0, minimum=0)  # 0: NOTIFY_HTTP_TIMEOUT
SMPP_USE_TLS = env_bool("SMPP_USE_TLS", False)
# Seconds of quiet after which the bound session sends enquire_link to keep itself alive.
SMPP_ENQUIRE_LINK_SECONDS = env_float("SMPP_ENQUIRE_LINK_SECONDS", 30.0, minimum=1)

# --- Delivery receipts and the public URL ------------------------------------------------
# Where providers reach this service (https://notify.example.com): SMS Aero's delivery
# callbacks and the Telegram webhook. Blank: no callbacks (receipts are polled instead).
NOTIFY_PUBLIC_URL = env_str("NOTIFY_PUBLIC_URL").rstrip("/")
if NOTIFY_PUBLIC_URL and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", NOTIFY_PUBLIC_URL):
    raise ImproperlyConfigured(
        f"NOTIFY_PUBLIC_URL must be an http(s) URL such as https://notify.example.com; "
        f"got {NOTIFY_PUBLIC_URL!r}"
    )
# Where users reach this service (https://notify.example.com): the links in what it sends —
# a user's preference page, one-click unsubscribe. NOTIFY_PUBLIC_URL when blank (one address
# serves both).
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL").rstrip("/") or NOTIFY_PUBLIC_URL
if PUBLIC_BASE_URL and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", PUBLIC_BASE_URL):
    raise ImproperlyConfigured(
        f"PUBLIC_BASE_URL must be an http(s) URL such as https://notify.example.com; "
        f"got {PUBLIC_BASE_URL!r}"
    )
# How long a preference-page link works (days).
NOTIFY_PREFERENCE_LINK_DAYS = env_int("NOTIFY_PREFERENCE_LINK_DAYS", 90, minimum=1)
# The secret path part of SMS Aero's callback URL (NOTIFY_PUBLIC_URL/sms/callback/<secret>/).
SMS_CALLBACK_SECRET = env_str("SMS_CALLBACK_SECRET")
if SMS_CALLBACK_SECRET and not re.fullmatch(r"[A-Za-z0-9_-]{16,128}", SMS_CALLBACK_SECRET):
    raise ImproperlyConfigured(
        "SMS_CALLBACK_SECRET must be 16 to 128 characters of A-Z a-z 0-9 _ -, e.g. from: "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )
# SMS Aero SMS still without a final receipt this many seconds after sending are polled
# (sms/status), less and less often, until NOTIFY_RECEIPT_GIVE_UP seconds have passed.
NOTIFY_RECEIPT_POLL_AFTER = env_float("NOTIFY_RECEIPT_POLL_AFTER", 300.0, minimum=0)
NOTIFY_RECEIPT_GIVE_UP = env_float("NOTIFY_RECEIPT_GIVE_UP", 48 * 3600.0, minimum=60)

# --- Delivery -------------------------------------------------------------------------------
CHANNELS = ("telegram", "email", "sms")
NOTIFY_CHANNEL_ORDER = env_list("NOTIFY_CHANNEL_ORDER", "telegram,email,sms")
if _unknown := [c for c in NOTIFY_CHANNEL_ORDER if c not in CHANNELS]:
    raise ImproperlyConfigured(
        f"NOTIFY_CHANNEL_ORDER may name {', '.join(CHANNELS)}; got {', '.join(_unknown)}"
    )
if len(set(NOTIFY_CHANNEL_ORDER)) != len(NOTIFY_CHANNEL_ORDER) or not NOTIFY_CHANNEL_ORDER:
    raise ImproperlyConfigured(
        f"NOTIFY_CHANNEL_ORDER must name each channel at most once; got {NOTIFY_CHANNEL_ORDER}"
    )
NOTIFY_SEND_ON_CREATE = env_bool("NOTIFY_SEND_ON_CREATE", True)
# Quiet hours for users who set none of their own, in each user's time zone: "22:00-08:00"
# (blank: none). Notifications that are not required wait until they end.
NOTIFY_QUIET_HOURS = env_str("NOTIFY_QUIET_HOURS")
try:
    NOTIFY_QUIET_WINDOW = read_window(NOTIFY_QUIET_HOURS)
except ValueError as _error:
    raise ImproperlyConfigured(f"NOTIFY_QUIET_HOURS: {_error}") from None
NOTIFY_HTTP_TIMEOUT = env_float("NOTIFY_HTTP_TIMEOUT", 10.0, minimum=0.1)
# Subject of emails whose notification has none; blank: "Notification" in the recipient's
# language (their contact's, else DJANGO_LANGUAGE_CODE).
NOTIFY_EMAIL_SUBJECT = env_str("NOTIFY_EMAIL_SUBJECT")
# The longest message (characters) notification_create and the admin accept.
NOTIFY_MESSAGE_MAX_LENGTH = env_int("NOTIFY_MESSAGE_MAX_LENGTH", 10_000, minimum=1)
# How long a notification may wait to be delivered; after that it ends "expired" (0: forever).
NOTIFY_MESSAGE_TTL = env_float("NOTIFY_MESSAGE_TTL", 86_400.0, minimum=0)
NOTIFY_MAX_ROUNDS = env_int("NOTIFY_MAX_ROUNDS", 5, minimum=1)
NOTIFY_RETRY_BASE_SECONDS = env_float("NOTIFY_RETRY_BASE_SECONDS", 30.0, minimum=0)
NOTIFY_RETRY_MAX_SECONDS = env_float("NOTIFY_RETRY_MAX_SECONDS", 3600.0, minimum=0)
NOTIFY_LEASE_SECONDS = env_float("NOTIFY_LEASE_SECONDS", 300.0, minimum=1)
NOTIFY_SWEEP_STALE_SECONDS = env_float("NOTIFY_SWEEP_STALE_SECONDS", 60.0, minimum=0)
# The dashboard's numbers (and a campaign's progress, a fifth as long; notifications.kept,
# one table for every web process): shown as they are for this long, then counted again
# behind while still shown; older than the second and asked for by nobody as long, counted
# while the request waits a second. 0: every load reads them live.
NOTIFY_DASHBOARD_FRESH_SECONDS = env_float("NOTIFY_DASHBOARD_FRESH_SECONDS", 10.0, minimum=0)
NOTIFY_DASHBOARD_STALE_SECONDS = env_float("NOTIFY_DASHBOARD_STALE_SECONDS", 60.0, minimum=0)
NOTIFY_WORKERS = env_int("NOTIFY_WORKERS", 8, minimum=1)
NOTIFY_CONSUMERS = env_int("NOTIFY_CONSUMERS", 1, minimum=1)
# The worker threads a bulk send's doorbells are sized for (about four ids-messages each).
# 0, the default: the threads of the consumers alive now, as their heartbeats report them
# (NOTIFY_WORKERS × NOTIFY_CONSUMERS only while no consumer has reported yet). Set it to
# override what the heartbeats say.
NOTIFY_DOORBELL_THREADS = env_int("NOTIFY_DOORBELL_THREADS", 0, minimum=0)
# How many notifications one queue message carries (claimed with one statement).
NOTIFY_BATCH_SIZE = env_int("NOTIFY_BATCH_SIZE", 50, minimum=1)
# Telegram pacing, shared by every consumer (notifications.pacing); 0 turns a limit off.
NOTIFY_TELEGRAM_RATE = env_float("NOTIFY_TELEGRAM_RATE", 25.0, minimum=0)
NOTIFY_TELEGRAM_CHAT_RATE = env_float("NOTIFY_TELEGRAM_CHAT_RATE", 1.0, minimum=0)
# A notification whose pacing slot is at most this far ahead waits for it in its consumer
# (holding no worker); one further ahead goes back to the queue for its time.
NOTIFY_TELEGRAM_PACE_MAX_WAIT = env_float("NOTIFY_TELEGRAM_PACE_MAX_WAIT", 10.0, minimum=0)
# Threads per consumer that send paced messages when their slot comes (0: NOTIFY_WORKERS).
NOTIFY_PACED_THREADS = env_int("NOTIFY_PACED_THREADS", 0, minimum=0)
# Telegram paid broadcast, opt-in per campaign (notifications.broadcast): the pace of its
# flagged messages over every consumer and host (Telegram takes up to 1,000/s; 0 turns it
# off), what one flagged message costs, and the Stars every campaign may spend per local day
# (blank: no day cap; each campaign's own budget still holds). Stars in tenths: 0.1, 12.5.
NOTIFY_TELEGRAM_PAID_RATE = env_float("NOTIFY_TELEGRAM_PAID_RATE", 1000.0, minimum=0)
NOTIFY_TELEGRAM_STARS_PER_MESSAGE = env_decimal(
    "NOTIFY_TELEGRAM_STARS_PER_MESSAGE", "0.1", minimum=Decimal("0.1")
)
NOTIFY_TELEGRAM_STARS_DAILY_LIMIT = env_decimal(
    "NOTIFY_TELEGRAM_STARS_DAILY_LIMIT", None, minimum=Decimal(0)
)
for _name, _stars in (
    ("NOTIFY_TELEGRAM_STARS_PER_MESSAGE", NOTIFY_TELEGRAM_STARS_PER_MESSAGE),
    ("NOTIFY_TELEGRAM_STARS_DAILY_LIMIT", NOTIFY_TELEGRAM_STARS_DAILY_LIMIT),
):
    if _stars is not None and _stars % Decimal("0.1"):
        raise ImproperlyConfigured(f"{_name} is counted in tenths of a Star; got {_stars}")
NOTIFY_DEFAULT_REGION = env_str("NOTIFY_DEFAULT_REGION", "RU").upper()
# Campaigns: recipients created per insert (and the largest selection created inside the
# request; a larger one, or a whole changelist filter, is created by the consumer).
NOTIFY_CAMPAIGN_CHUNK = env_int("NOTIFY_CAMPAIGN_CHUNK", 1000, minimum=1)
# A consumer creates a campaign of at least this many recipients in a process of its own
# (notifications/fill_process.py), out of its sending threads' way; 0: always in the thread.
NOTIFY_CAMPAIGN_PROCESS_FROM = env_int("NOTIFY_CAMPAIGN_PROCESS_FROM", 50_000, minimum=0)
# "Cancel the rest": a campaign's notifications cancelled per transaction.
NOTIFY_CANCEL_CHUNK = env_int("NOTIFY_CANCEL_CHUNK", 10_000, minimum=1)

# --- Probes and metrics (notifications/operations, docs/operations.md) ----------------------
# /readyz fails when no consumer reported alive for this long (each does every 5 s).
NOTIFY_READY_HEARTBEAT_SECONDS = env_float("NOTIFY_READY_HEARTBEAT_SECONDS", 30.0, minimum=10)
# Prometheus sends it as "Authorization: Bearer <token>"; blank: the web's /metrics is off.
NOTIFY_METRICS_TOKEN = env_str("NOTIFY_METRICS_TOKEN")
# A consumer serves its metrics on this port (0: not), bound to NOTIFY_METRICS_BIND.
NOTIFY_METRICS_PORT = env_int("NOTIFY_METRICS_PORT", 0, minimum=0)
NOTIFY_METRICS_BIND = env_str("NOTIFY_METRICS_BIND", "127.0.0.1")
# prometheus_client's multiprocess mode (manage.py runservice sets it for its processes).
if (_metrics_dir := env_str("PROMETHEUS_MULTIPROC_DIR")) and not Path(_metrics_dir).is_dir():
    raise ImproperlyConfigured(
        f"PROMETHEUS_MULTIPROC_DIR must be an existing directory; got {_metrics_dir!r}"
    )

# --- Retention (notifications/operations/retention.py, docs/operations.md) ---------------------
# Final notifications nothing touched for this many days go hourly, with their attempts, SMS
# receipts and the skipped recipients of campaigns that ended as long ago.
NOTIFY_RETENTION_DAYS = env_int("NOTIFY_RETENTION_DAYS", 90, minimum=1)
# Notifications deleted per transaction, and the seconds one hourly run may take.
NOTIFY_RETENTION_BATCH = env_int("NOTIFY_RETENTION_BATCH", 1000, minimum=1)
NOTIFY_RETENTION_SECONDS = env_float("NOTIFY_RETENTION_SECONDS", 600.0, minimum=1)

# --- Status webhooks to client services (notifications/webhooks, README "Webhooks") ----------
# Seconds to wait for an endpoint's answer (connecting, then each read).
NOTIFY_WEBHOOK_TIMEOUT = env_float("NOTIFY_WEBHOOK_TIMEOUT", 10.0, minimum=0.1)
# A delivery is tried at once, then retried after each of these seconds in turn (Standard
# Webhooks' schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); after the last it has
# failed, and an endpoint that got nothing through meanwhile is disabled.
NOTIFY_WEBHOOK_RETRY_SCHEDULE = env_list(
    "NOTIFY_WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000"
)
try:
    NOTIFY_WEBHOOK_RETRY_SCHEDULE = [float(s) for s in NOTIFY_WEBHOOK_RETRY_SCHEDULE]
except ValueError:
    raise ImproperlyConfigured(
        "NOTIFY_WEBHOOK_RETRY_SCHEDULE must be seconds separated by commas, e.g. "
        f"5,300,1800; got {NOTIFY_WEBHOOK_RETRY_SCHEDULE!r}"
    ) from None
if NOTIFY_WEBHOOK_RETRY_SCHEDULE and min(NOTIFY_WEBHOOK_RETRY_SCHEDULE) < 0:
    raise ImproperlyConfigured("NOTIFY_WEBHOOK_RETRY_SCHEDULE's seconds may not be negative")
# Threads of the webhook lane each consumer starts beside it (``manage.py run_webhooks``, a
# process of its own); 0: this consumer starts none.
NOTIFY_WEBHOOK_THREADS = env_int("NOTIFY_WEBHOOK_THREADS", 4, minimum=0)
# How much the lane process yields the CPU to delivery (``nice``, 0–19): where both want the
# cores, notifications go first and webhooks catch up after; an idle machine runs it at full
# speed all the same. 0: as the consumer.
NOTIFY_WEBHOOK_NICE = env_int("NOTIFY_WEBHOOK_NICE", 10, minimum=0)
if NOTIFY_WEBHOOK_NICE > 19:
    raise ImproperlyConfigured(f"NOTIFY_WEBHOOK_NICE is at most 19; got {NOTIFY_WEBHOOK_NICE}")
# 1 lets endpoints be on loopback, private and link-local addresses (tests, one private
# network); otherwise such a URL is refused when saved and when sent (SSRF).
NOTIFY_WEBHOOK_ALLOW_PRIVATE = env_bool("NOTIFY_WEBHOOK_ALLOW_PRIVATE", False)
# Days an event is kept after its last delivery succeeded or gave up (hourly prune).
NOTIFY_WEBHOOK_EVENT_DAYS = env_int("NOTIFY_WEBHOOK_EVENT_DAYS", 30, minimum=1)

# --- HTTP API (notifications/api) ---------------------------------------------------------
# Requests per API key (or staff user) and period, shared by every web process and host:
# 600/min, 20/s, 10000/h, …; 0 turns throttling off.
NOTIFY_API_RATE = env_rate("NOTIFY_API_RATE", "600/min")
# Requests per client address without a valid key or session (no credentials, a bad key, the
# schema and docs pages) and login POSTs of the browsable API, shared the same way.
NOTIFY_API_ANON_RATE = env_rate("NOTIFY_API_ANON_RATE", "60/min")
# The schema (/api/v1/schema/) and its pages (docs/, redoc/) without a key or staff session.
NOTIFY_API_DOCS_PUBLIC = env_bool("NOTIFY_API_DOCS_PUBLIC", True)
# How long an Idempotency-Key is remembered (hours, at least 24).
NOTIFY_API_IDEMPOTENCY_HOURS = env_int("NOTIFY_API_IDEMPOTENCY_HOURS", 24, minimum=24)
# The largest request body the API reads (bytes); larger ones get 413. Django's own limit on a
# body read into memory is the same, so nothing reads a larger one anywhere.
NOTIFY_API_MAX_BODY_BYTES = env_int("NOTIFY_API_MAX_BODY_BYTES", 8 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = NOTIFY_API_MAX_BODY_BYTES
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "notifications.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["notifications.api.auth.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["notifications.api.throttling.ClientRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["notifications.api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "notifications.api.errors.exception_handler",
    "DATETIME_FORMAT": "iso-8601",
    # Throttling by address trusts the proxy's X-Forwarded-For only behind one (see above).
    "NUM_PROXIES": 1 if env_bool("DJANGO_BEHIND_PROXY", False) else None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Notification Service API",
    "DESCRIPTION": "Create, schedule, track and cancel notifications delivered through "
    "Telegram → Email → SMS. Authenticate with `Authorization: Bearer <API key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "NotificationStatus": "notifications.models.Notification.Status",
        "Channel": "notifications.models.Channel",
        "DeliveryOutcome": "notifications.models.DeliveryAttempt.Outcome",
        "CategoryOverCap": "notifications.preferences.models.Category.OverCap",
        "WebhookEventType": "notifications.webhooks.models.EventType",
        "WebhookDeliveryStatus": "notifications.webhooks.models.WebhookDelivery.Status",
        "WebhookOutcome": "notifications.webhooks.models.WebhookAttempt.Outcome",
        "Language": ["", "ru", "en"],
    },
    # A nullable enum is the enum and `nullable`, not a oneOf with a one-value NullEnum.
    "ENUM_ADD_EXPLICIT_BLANK_NULL_CHOICE": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "notifications.api.schema.add_error_responses_and_links",
    ],
}

# Error reports to Sentry: off unless SENTRY_DSN is set (notifications.operations.sentry).
SENTRY_DSN = env_str("SENTRY_DSN")
SENTRY_ENVIRONMENT = env_str("SENTRY_ENVIRONMENT")
SENTRY_TRACES_SAMPLE_RATE = env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0, minimum=0.0)

# LOG_FORMAT: "plain" (default, for people) or "json" (one object per line, for a log
# pipeline). Either way secrets are masked and each record carries the ids of the
# notification and campaign being worked on (notifications.operations.logs).
LOG_FORMAT = env_choice("LOG_FORMAT", "plain", ("plain", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "notifications.redaction.RedactingFilter"},
        "context": {"()": "notifications.operations.logs.ContextFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"},
        "json": {"()": "notifications.operations.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact", "context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        # huey logs two INFO lines per task, a noticeable share of a busy consumer's CPU;
        # the consumer's own start-up and shutdown lines stay.
        "huey": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "huey.consumer": {"level": "INFO"},
        # urllib3 logs full URLs at DEBUG, and the Telegram URL carries the bot token.
        "urllib3": {"level": "WARNING"},
        # smpplib logs every connect and disconnect at INFO.
        "smpplib": {"level": "WARNING"},
    },
}
