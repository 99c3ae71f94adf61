"""Creating notifications, the sweeper, commands and configuration parsing."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import call_command
from django.db import IntegrityError
from django.utils import timezone
from huey import PostgresHuey, PriorityRedisHuey, SqliteHuey

from notification_service.env import env_bool, env_int, env_list
from notification_service.queue import huey_from_url
from notifications.models import Notification
from notifications.services import notification_create, notifications_sweep
from notifications.validators import normalize_phone

Status = Notification.Status


@pytest.mark.django_db
def test_new_notification_is_queued_after_commit(
    django_user_model, django_capture_on_commit_callbacks
):
    user = django_user_model.objects.create_user("a")
    with django_capture_on_commit_callbacks() as callbacks:
        notification = notification_create(user=user, message="hi")
    assert notification.status == Status.QUEUED
    assert notification.queued_at is not None
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_send_on_create_can_be_turned_off(settings, django_user_model):
    settings.NOTIFY_SEND_ON_CREATE = False
    user = django_user_model.objects.create_user("a")
    assert notification_create(user=user, message="hi").status == Status.PENDING


@pytest.mark.django_db
@pytest.mark.parametrize("message", ["", "   \n "])
def test_empty_message_is_refused(django_user_model, message):
    user = django_user_model.objects.create_user("a")
    with pytest.raises(ValidationError):
        notification_create(user=user, message=message)
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_database_refuses_an_empty_message_even_without_validation(django_user_model):
    user = django_user_model.objects.create_user("a")
    with pytest.raises(IntegrityError):
        Notification.objects.create(user=user, message="")


@pytest.mark.django_db
def test_idempotency_key_returns_the_first_notification(django_user_model):
    user = django_user_model.objects.create_user("a")
    first = notification_create(user=user, message="order 17 shipped", idempotency_key="order-17")
    second = notification_create(user=user, message="order 17 shipped", idempotency_key="order-17")
    assert first.pk == second.pk
    assert Notification.objects.count() == 1


@pytest.mark.django_db
def test_sweeper_requeues_expired_leases_and_leaves_live_ones(django_user_model, monkeypatch):
    rung: list[list[int]] = []
    monkeypatch.setattr("notifications.services.ring_doorbell", lambda ids: rung.append(ids))
    user = django_user_model.objects.create_user("a")
    now = timezone.now()
    dead = Notification.objects.create(
        user=user, message="x", status=Status.SENDING, lease_expires_at=now - timedelta(seconds=5)
    )
    alive = Notification.objects.create(
        user=user, message="y", status=Status.SENDING, lease_expires_at=now + timedelta(minutes=5)
    )
    result = notifications_sweep()
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == Status.QUEUED and dead.lease_expires_at is None
    assert alive.status == Status.SENDING
    assert result["lease_expired"] == 1
    assert dead.pk in rung[0] and alive.pk not in rung[0]


@pytest.mark.django_db
def test_sweeper_rings_stale_queued_rows_when_the_queue_is_empty(
    settings, django_user_model, monkeypatch
):
    from huey.contrib.djhuey import HUEY

    HUEY.flush()
    settings.NOTIFY_SEND_ON_CREATE = False
    rung: list[list[int]] = []
    monkeypatch.setattr("notifications.services.ring_doorbell", lambda ids: rung.append(ids))
    user = django_user_model.objects.create_user("a")
    long_ago = timezone.now() - timedelta(minutes=10)
    stale = Notification.objects.create(
        user=user, message="x", status=Status.QUEUED, next_attempt_at=long_ago
    )
    later = Notification.objects.create(
        user=user,
        message="y",
        status=Status.QUEUED,
        next_attempt_at=timezone.now() + timedelta(minutes=10),
    )
    notifications_sweep()
    assert stale.pk in rung[0] and later.pk not in rung[0]


@pytest.mark.django_db
def test_ensure_admin_creates_one_admin_and_prints_its_password_once(django_user_model):
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    password = out.getvalue().split("password: ")[1].split()[0]
    admin = django_user_model.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    again = io.StringIO()
    call_command("ensure_admin", stdout=again)
    assert password not in again.getvalue()
    assert django_user_model.objects.count() == 1


@pytest.mark.django_db
def test_check_channels_reports_each_channel_without_sending(settings, telegram, smtp):
    settings.TELEGRAM_BOT_TOKEN = telegram.token
    settings.TELEGRAM_API_URL = telegram.url
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp.port
    out = io.StringIO()
    call_command("check_channels", stdout=out)
    text = out.getvalue()
    assert "telegram: configured, bot @fake_bot answers" in text
    assert "email: configured, SMTP server 127.0.0.1 answers" in text
    assert "sms" in text
    assert telegram.messages == [] and smtp.received == []


@pytest.mark.django_db
def test_check_channels_fails_when_a_configured_channel_does_not_answer(settings):
    settings.TELEGRAM_BOT_TOKEN = "123:abc"
    settings.TELEGRAM_API_URL = "http://127.0.0.1:9"
    settings.EMAIL_HOST = ""
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("check_channels", stdout=out, stderr=io.StringIO())
    assert "telegram: configured, NOT answering: Telegram unreachable" in out.getvalue()
    assert "email: not configured" in out.getvalue()


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
