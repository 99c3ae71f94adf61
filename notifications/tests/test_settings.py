"""Configuration: every setting read from the environment and refused at start-up when wrong;
production HTTPS settings that pass `check --deploy`; secrets never shown; private files."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from django.views.debug import technical_500_response
from gunicorn.config import Config
from huey import PostgresHuey, PriorityRedisHuey, SqliteHuey

from notification_service.env import env_bool, env_int, env_list, env_rate
from notification_service.gunicorn_logging import RedactingLogger
from notification_service.queue import huey_from_url
from notifications.redaction import RedactingFilter
from notifications.tests.fixtures import BASE_DIR
from notifications.validators import normalize_phone

PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "x7#" + "k" * 40 + "-production-secret-key-of-sufficient-length",
    "DJANGO_ALLOWED_HOSTS": "notify.example.com",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://notify.example.com",
    "DJANGO_HTTPS": "1",
    "DJANGO_BEHIND_PROXY": "1",
    "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "1",
    "DJANGO_HSTS_PRELOAD": "1",
}


def manage(*args: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    """``manage.py`` in a process of its own with the service's settings and ``env``."""
    ours = ("DJANGO_", "NOTIFY_", "EMAIL_", "SMS", "SMPP_", "TELEGRAM_")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    clean.update(
        DJANGO_SETTINGS_MODULE="notification_service.settings",
        NOTIFY_SKIP_DOTENV="1",
        NOTIFY_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        QUEUE_URL=f"sqlite:///{tmp_path / 'queue.sqlite3'}",
    )
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_documented_production_settings_pass_check_deploy(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", tmp_path=tmp_path, **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("env", "text"),
    [
        ({"NOTIFY_CHANNEL_ORDER": "telegram,pigeon"}, "NOTIFY_CHANNEL_ORDER may name"),
        ({"NOTIFY_CHANNEL_ORDER": "email,email"}, "at most once"),
        ({"NOTIFY_SMS_TRANSPORTS": "api,fax"}, "NOTIFY_SMS_TRANSPORTS may name"),
        ({"NOTIFY_SMS_LIMIT_POLICY": "sometimes"}, "NOTIFY_SMS_LIMIT_POLICY"),
        ({"SMS_SMTP_ADDRESS": "sms.example.net"}, "SMS_SMTP_ADDRESS must be an address template"),
        ({"SMS_SMTP_DOMAIN": "smsaero.ru"}, "replaced by SMS_SMTP_ADDRESS"),
        ({"DJANGO_CSRF_TRUSTED_ORIGINS": "notify.example.com"}, "with their scheme"),
        ({"EMAIL_USE_TLS": "1", "EMAIL_USE_SSL": "1"}, "mutually exclusive"),
        ({"TELEGRAM_UPDATES": "push"}, "TELEGRAM_UPDATES must be webhook, poll or off"),
        ({"TELEGRAM_UPDATES": "webhook"}, "TELEGRAM_UPDATES=webhook needs TELEGRAM_WEBHOOK_SECRET"),
        ({"TELEGRAM_WEBHOOK_SECRET": "short"}, "TELEGRAM_WEBHOOK_SECRET must be 16 to 256"),
        ({"TELEGRAM_BOT_USERNAME": "my bot"}, "TELEGRAM_BOT_USERNAME must be"),
        ({"NOTIFY_TELEGRAM_INVITE_TTL": "soon"}, "NOTIFY_TELEGRAM_INVITE_TTL must be a number"),
        ({"NOTIFY_PUBLIC_URL": "notify.example.com"}, "NOTIFY_PUBLIC_URL must be an http(s) URL"),
        ({"SMS_CALLBACK_SECRET": "a/b"}, "SMS_CALLBACK_SECRET must be 16 to 128"),
        ({"NOTIFY_RECEIPT_GIVE_UP": "10"}, "NOTIFY_RECEIPT_GIVE_UP must be at least 60"),
        ({"NOTIFY_API_RATE": "600/fortnight"}, "NOTIFY_API_RATE must be a rate such as 600/min"),
        ({"NOTIFY_API_IDEMPOTENCY_HOURS": "1"}, "NOTIFY_API_IDEMPOTENCY_HOURS must be at least 24"),
        ({"NOTIFY_QUIET_HOURS": "25:00-08:00"}, "NOTIFY_QUIET_HOURS: give two 24-hour times"),
        ({"NOTIFY_QUIET_HOURS": "22:00-22:00"}, "NOTIFY_QUIET_HOURS: quiet hours from 22:00"),
        ({"PUBLIC_BASE_URL": "notify.example.com"}, "PUBLIC_BASE_URL must be an http(s) URL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be one of plain, json"),
    ],
)
def test_a_bad_setting_stops_the_service_at_start_up_naming_it(tmp_path, env, text):
    result = manage("check", tmp_path=tmp_path, **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and text in result.stderr


def test_mail_uses_starttls_by_default(tmp_path):
    probe = (
        "from django.conf import settings as s; "
        "print(s.EMAIL_USE_TLS, s.EMAIL_USE_SSL, s.SMS_SMTP_USE_TLS, s.SMPP_USE_TLS)"
    )
    result = manage("shell", "--no-imports", "-c", probe, tmp_path=tmp_path)
    assert result.stdout.split() == ["True", "False", "True", "False"]
    result = manage(
        "shell",
        "--no-imports",
        "-c",
        probe,
        tmp_path=tmp_path,
        EMAIL_PORT="465",
        SMS_SMTP_PORT="465",
    )
    assert result.stdout.split() == ["False", "True", "False", "False"]


def test_var_is_private(tmp_path):
    result = manage("migrate", "--noinput", tmp_path=tmp_path, DATABASE_URL="")
    assert result.returncode == 0, result.stderr
    var = tmp_path / "var"
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    files = list(var.iterdir())
    assert {f.name for f in files} >= {"secret_key", "db.sqlite3"}
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files if f.is_file())


def _connect(url: str) -> None:
    raise ConnectionError("the database is down")  # ``url`` is a local of this frame


def test_database_and_queue_passwords_never_reach_an_error_page(settings):
    """Not in the settings listed, not in a frame's local variables."""
    db_password, queue_password = "db-" + "pa55word", "queue-" + "pa55word"
    settings.DEBUG = True
    settings.DATABASE_URL = f"postgres://notify:{db_password}@db.internal:5432/notify"
    settings.QUEUE_URL = f"redis://:{queue_password}@redis.internal:6379/0"
    try:
        _connect(settings.DATABASE_URL)
    except ConnectionError:
        page = technical_500_response(RequestFactory().get("/"), *sys.exc_info()).content.decode()
    assert "the database is down" in page
    assert db_password not in page and queue_password not in page


def test_database_and_queue_passwords_never_reach_the_logs(settings, caplog):
    settings.DATABASE_URL = "postgres://notify:db-pa55word@db.internal:5432/notify"
    settings.QUEUE_URL = "redis://:queue%2Fpa55@redis.internal:6379/0"
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.WARNING):
        logger.warning("cannot reach %s or %s", settings.DATABASE_URL, settings.QUEUE_URL)
    assert "db-pa55word" not in caplog.text and "queue%2Fpa55" not in caplog.text
    assert "postgres://notify:***@db.internal" in caplog.text


def test_phones_are_normalised_to_e164(settings):
    settings.NOTIFY_DEFAULT_REGION = "RU"
    assert normalize_phone("8 916 123-45-67") == "+79161234567"
    assert normalize_phone("+44 7911 123456") == "+447911123456"


@pytest.mark.parametrize(
    ("url", "cls"),
    [
        ("sqlite:///var/test_queue_parse.sqlite3", SqliteHuey),
        ("postgres://postgres@127.0.0.1:5432/postgres", PostgresHuey),
        ("redis://127.0.0.1:6379/15", PriorityRedisHuey),
    ],
)
def test_queue_url_picks_the_tier(url, cls, tmp_path, monkeypatch):
    if cls is PostgresHuey:
        # Creating PostgresHuey connects; the parse is what's under test here.
        monkeypatch.setattr(PostgresHuey, "__init__", lambda self, *a, **k: None)
    assert isinstance(huey_from_url(url, tmp_path), cls)


def test_unknown_queue_scheme_is_refused(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="amqp"):
        huey_from_url("amqp://guest@127.0.0.1/", tmp_path)


def test_env_helpers_refuse_malformed_values(monkeypatch):
    monkeypatch.setenv("NOTIFY_SEND_ON_CREATE", "maybe")
    with pytest.raises(ImproperlyConfigured, match="NOTIFY_SEND_ON_CREATE"):
        env_bool("NOTIFY_SEND_ON_CREATE")
    monkeypatch.setenv("NOTIFY_MAX_ROUNDS", "ten")
    with pytest.raises(ImproperlyConfigured, match="NOTIFY_MAX_ROUNDS"):
        env_int("NOTIFY_MAX_ROUNDS", 1)
    monkeypatch.setenv("NOTIFY_MAX_ROUNDS", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("NOTIFY_MAX_ROUNDS", 1, minimum=1)
    monkeypatch.setenv("NOTIFY_CHANNEL_ORDER", " telegram, ,email ")
    assert env_list("NOTIFY_CHANNEL_ORDER") == ["telegram", "email"]


def test_gunicorn_access_log_masks_the_callback_secret():
    path = "/sms/callback/callback-secret-0123456789/"
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": path,
        "PATH_INFO": path,
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    request = SimpleNamespace(headers=[("X-Telegram-Bot-Api-Secret-Token", "webhook-secret-xyz")])
    response = SimpleNamespace(status="200 OK", headers=[], sent=2)
    atoms = RedactingLogger(Config()).atoms(response, request, environ, timedelta(seconds=0))
    assert atoms["r"] == "POST /sms/callback/***/ HTTP/1.1"
    assert atoms["U"] == "/sms/callback/***/"
    assert atoms["{x-telegram-bot-api-secret-token}i"] == "***"


def test_env_example_names_every_setting_and_starts_as_is(tmp_path):
    """`cp .env.example .env` must give a service that starts, and every variable the
    settings read must be in it, with its comment."""
    import re

    source = (BASE_DIR / "notification_service" / "settings.py").read_text()
    read = set(re.findall(r'env_(?:str|bool|int|float|list)\(\s*"([A-Z0-9_]+)"', source))
    example = (BASE_DIR / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, flags=re.MULTILINE))
    retired = {"SMS_SMTP_DOMAIN"}  # read only to say what replaced it
    assert read - listed - retired == set()
    values = {
        name: value
        for name, value in re.findall(r"^([A-Z0-9_]+)=(.*)$", example, flags=re.MULTILINE)
        if name not in {"DATABASE_URL", "QUEUE_URL", "NOTIFY_VAR_DIR", "NOTIFY_SKIP_DOTENV"}
    }
    result = manage("check", tmp_path=tmp_path, **values)
    assert result.returncode == 0, result.stderr


def test_api_rates_read_as_requests_per_seconds(monkeypatch):
    for text, rate in [("600/min", (600, 60.0)), ("20/s", (20, 1.0)), ("5000/h", (5000, 3600.0))]:
        monkeypatch.setenv("NOTIFY_API_RATE", text)
        assert env_rate("NOTIFY_API_RATE", "1/s") == rate
    monkeypatch.setenv("NOTIFY_API_RATE", "0")
    assert env_rate("NOTIFY_API_RATE", "600/min") is None
    for bad in ("600", "-1/min", "x/min", "10/week"):
        monkeypatch.setenv("NOTIFY_API_RATE", bad)
        with pytest.raises(ImproperlyConfigured, match="NOTIFY_API_RATE"):
            env_rate("NOTIFY_API_RATE", "600/min")
