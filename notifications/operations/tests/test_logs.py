"""Structured logs (``LOG_FORMAT=json``): one JSON object per line from the consumer and from
gunicorn, each carrying the ids of the notification and campaign it is about, and no secret."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import urllib.request

import pytest
from django.contrib.auth import get_user_model

from notifications import services
from notifications.models import Campaign, Notification, UserContact
from notifications.operations.logs import ContextFilter, JsonFormatter, bound
from notifications.redaction import RedactingFilter
from notifications.tests.fakes.smtp import free_port
from notifications.tests.fixtures import wait_for, wait_for_status
from notifications.tests.harness import start_runservice

Status = Notification.Status
User = get_user_model()


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_json_record_carries_the_bound_ids_and_masks_secrets(settings):
    settings.TELEGRAM_BOT_TOKEN = "123456:secret-bot-token-value"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    handler.addFilter(ContextFilter())
    log = logging.getLogger("notifications.test_logs")
    log.addHandler(handler)
    log.propagate = False
    try:
        with bound(notification_id=7, campaign_id=3):
            log.warning(
                "Telegram said no at https://api.telegram.org/bot123456:secret-bot-token-value/x",
                extra={"provider": "telegram", "url": "bot123456:secret-bot-token-value"},
            )
            with bound(notification_id=8):
                try:
                    raise ValueError("token 123456:secret-bot-token-value refused")
                except ValueError:
                    log.exception("failed")
        log.info("outside")
    finally:
        log.removeHandler(handler)
    first, second, third = json_lines(stream.getvalue())
    assert (first["level"], first["notification_id"], first["campaign_id"]) == ("WARNING", 7, 3)
    assert first["provider"] == "telegram" and first["url"] == "bot***"
    assert (second["notification_id"], second["campaign_id"]) == (8, 3)
    assert "ValueError" in second["exc_info"]
    assert "notification_id" not in third and "campaign_id" not in third
    assert "secret-bot-token-value" not in stream.getvalue()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_consumer_logs_json_lines_carrying_notification_and_campaign_ids(
    start_consumer, telegram, smtp, make_user, settings
):
    settings.NOTIFY_CAMPAIGN_CHUNK = 1  # the campaign is created by the consumer
    telegram.per_chat["4040"] = "403"  # Telegram refuses: a round worth logging at INFO
    consumer = start_consumer(LOG_FORMAT="json", LOG_LEVEL="DEBUG", NOTIFY_CAMPAIGN_CHUNK="1")
    user = make_user(email="log@example.com", telegram_chat_id="4040")
    notification = services.notification_create(user=user, message="hello")
    wait_for_status(notification, Status.SENT)
    others = [make_user(email=f"c{i}@example.com") for i in range(2)]
    admin = User.objects.create_superuser("boss", password="x")
    campaign = services.campaign_create(
        created_by=admin, user_ids=[u.pk for u in others], message="to all"
    )
    wait_for(
        lambda: Notification.objects.filter(campaign=campaign, status=Status.SENT).count() == 2,
        60,
        "the campaign sent",
    )
    consumer.stop(signal.SIGINT)
    lines = json_lines(consumer.output())  # every line is one JSON object
    about_it = [line for line in lines if line.get("notification_id") == notification.pk]
    assert any(line["message"] == "round 1: sent via email" for line in about_it), about_it
    # Its id is bound while it is delivered (a library's line then carries it too), and
    # only then: none of the campaign's later lines carries it.
    assert not any(line.get("campaign_id") == campaign.pk for line in about_it), about_it
    assert any(
        line.get("campaign_id") == campaign.pk and "notifications created" in line["message"]
        for line in lines
    )
    assert any(
        line.get("campaign_id") == campaign.pk and line.get("notification_id") for line in lines
    )
    assert telegram.token.split(":")[1] not in consumer.output()
    assert Campaign.objects.get(pk=campaign.pk).recipients == 2
    assert UserContact.objects.get(user=user).telegram_chat_id == "4040"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_gunicorn_logs_json_too_with_the_callback_secret_masked(consumer_env, tmp_path):
    port = free_port()
    secret = "callback-secret-0123456789"
    env = {
        **consumer_env,
        "PORT": str(port),
        "LOG_FORMAT": "json",
        "SMS_CALLBACK_SECRET": secret,
    }
    log = tmp_path / "runservice.log"
    process = start_runservice(env, log, "--stop-timeout", "10")
    try:

        def answered(path: str, data: bytes | None = None) -> int | None:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data)
                with urllib.request.urlopen(request) as answer:
                    return answer.status
            except urllib.error.HTTPError as err:
                return err.code
            except OSError:
                return None

        wait_for(lambda: answered("/admin/login/") == 200, 60, "the admin login page")
        assert answered(f"/sms/callback/{secret}/", b"id=1&status=1") == 200
        wait_for(lambda: "/sms/callback/***/" in log.read_text(), 10, "the callback's line")
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
    web = [
        json.loads(line.split(" | ", 1)[1])
        for line in log.read_text().splitlines()
        if line.lstrip().startswith("web |")
    ]
    access = [line for line in web if line["logger"] == "gunicorn.access"]
    assert {"method": "POST", "path": "/sms/callback/***/", "status": "200"}.items() <= next(
        line for line in access if line["method"] == "POST"
    ).items()
    assert any(line["logger"] == "gunicorn.error" for line in web)  # its own lines are JSON
    assert secret not in log.read_text()
