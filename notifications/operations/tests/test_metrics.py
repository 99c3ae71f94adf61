"""Prometheus metrics: what the delivery code counts, what a scrape shows (and promtool
accepts), who may read it, and counts of several processes adding up."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from notifications.delivery import deliver_now
from notifications.models import Notification
from notifications.operations import exposition, metrics
from notifications.operations.models import ConsumerHeartbeat
from notifications.operations.tests.scrapes import fetch, promtool_problems, value
from notifications.services import notification_create
from notifications.tests.fakes.smtp import free_port
from notifications.tests.fixtures import BASE_DIR, wait_for, wait_for_status
from notifications.tests.test_senders_sms import configure

Status = Notification.Status
TOKEN = "scrape-token-0123456789"


def counted(name: str, **labels: str) -> float:
    """This process's value of a metric (0 before its first count)."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client) -> str:
    answer = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status_code == 200, answer.content
    return answer.content.decode()


@pytest.fixture
def token(settings) -> str:
    settings.NOTIFY_METRICS_TOKEN = TOKEN
    return TOKEN


# --- what is counted ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_notifications_are_counted_by_source_and_category_once_committed(
    make_user, django_capture_on_commit_callbacks
):
    from notifications.preferences.models import Category

    user = make_user(email="a@example.com")
    Category.objects.create(key="promotions", name_en="Promotions")
    keys = [("api", "default"), ("api", "promotions"), ("orm", "default")]
    before = {
        (source, key): counted("notify_notifications_created_total", source=source, category=key)
        for source, key in keys
    }
    with django_capture_on_commit_callbacks(execute=True):
        notification_create(user=user, message="hello", queue=False, source="api")
        notification_create(
            user=user, message="sale", queue=False, source="api", category="promotions"
        )
        with pytest.raises(RuntimeError), transaction.atomic():
            notification_create(user=user, message="rolled back", queue=False, source="api")
            raise RuntimeError
        Notification.objects.create(user=user, message="through the ORM")
    for source, key in keys:
        now = counted("notify_notifications_created_total", source=source, category=key)
        assert now == before[source, key] + 1, (source, key)


@pytest.mark.django_db
def test_a_campaign_steps_rows_of_one_prototype_are_each_counted(make_user):
    """A campaign step counts its 10,000 rows as its prototype given once for each: every
    one is counted, under the prototype's category, beside rows of their own."""
    from notifications.preferences.models import Category

    promotions = Category.objects.create(key="promotions", name_en="Promotions")
    user = make_user(email="a@example.com")
    prototype = Notification(user=user, message="sale", category=promotions)
    own = [Notification(user=user, message="hi"), Notification(user=user, message="hey")]
    tally = dict(metrics.created_tally("campaign", [prototype] * 3 + own + [prototype]))
    assert tally == {("campaign", "promotions"): 4, ("campaign", "default"): 2}


@pytest.mark.django_db
def test_an_sms_round_counts_its_attempt_segments_and_cost(settings, sms_env, smsaero, make_user):
    configure(settings, sms_env)
    settings.NOTIFY_SMS_TRANSPORTS = ["api"]
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.EMAIL_HOST = ""
    labels = {"channel": "sms", "transport": "sms_api", "outcome": "success"}
    before = {
        "attempts": counted("notify_attempts_total", **labels),
        "segments": counted("notify_sms_segments_total", transport="sms_api"),
        "cost": counted("notify_sms_cost_total", transport="sms_api", currency="RUB"),
        "timed": counted("notify_send_duration_seconds_count", channel="sms"),
    }
    user = make_user(phone="+79161234567")
    notification = notification_create(user=user, message="Код: 1234", channels=["sms"])
    [decision] = deliver_now([notification.pk])
    assert decision.status == Status.SENT
    assert counted("notify_attempts_total", **labels) == before["attempts"] + 1
    assert counted("notify_sms_segments_total", transport="sms_api") == before["segments"] + 1
    cost = counted("notify_sms_cost_total", transport="sms_api", currency="RUB")
    assert cost == pytest.approx(before["cost"] + 5.49)
    assert counted("notify_send_duration_seconds_count", channel="sms") == before["timed"] + 1


# --- who may read it ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_web_metrics_are_off_without_a_token_and_need_it_when_set(client, settings):
    settings.NOTIFY_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.NOTIFY_METRICS_TOKEN = TOKEN
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=TOKEN).status_code == 401  # no scheme
    answer = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain")
    assert "notify_due_notifications" in answer.content.decode()


# --- the database gauges ------------------------------------------------------------------------


@pytest.mark.django_db
def test_due_gauges_count_waiting_notifications_and_the_oldest_ones_age(client, token, make_user):
    user = make_user(email="a@example.com")
    now = timezone.now()
    for status, due in [
        (Status.QUEUED, now - timedelta(seconds=90)),
        (Status.QUEUED, now - timedelta(seconds=10)),
        (Status.SCHEDULED, now + timedelta(hours=1)),  # not due yet
        (Status.SENT, now - timedelta(hours=1)),  # done
    ]:
        Notification.objects.create(user=user, message="m", status=status, next_attempt_at=due)
    text = scrape(client)
    assert value(text, "notify_due_notifications") == 2
    assert 90 <= value(text, "notify_oldest_due_notification_age_seconds") < 300
    assert value(text, "notify_consumers") == 0
    ConsumerHeartbeat.objects.create(
        host="h", pid=1, started_at=now, seen_at=now, workers=2, paced_threads=2
    )
    assert value(scrape(client), "notify_consumers") == 1


@pytest.mark.django_db
def test_the_web_scrape_passes_promtool_check_metrics(client, token, make_user):
    metrics.attempts_recorded([])  # the families are there with or without samples
    metrics.rate_limited("telegram")
    metrics.receipt_recorded("sms_smpp", "delivered")
    assert promtool_problems("check", "metrics", stdin=scrape(client)) == ""


# --- a real consumer ----------------------------------------------------------------------------


@pytest.mark.e2e
def test_a_consumers_metrics_count_attempts_429s_and_receipts_and_pass_promtool(
    start_consumer, telegram, smtp, sms_env, make_user
):
    port = free_port()
    start_consumer(
        NOTIFY_METRICS_PORT=str(port),
        NOTIFY_METRICS_TOKEN=TOKEN,
        NOTIFY_SMS_TRANSPORTS="smpp",
        **sms_env,
    ).wait_started()
    telegram.configure({"per_chat": {"333": "400"}})
    telegram.configure({"queue": ["429"]})  # the first send is told to slow down
    first = notification_create(user=make_user(telegram_chat_id="111"), message="one")
    wait_for_status(first, Status.SENT)
    for user in (
        make_user(telegram_chat_id="222"),
        make_user(telegram_chat_id="333", email="c@example.com"),  # chat not found → email
        make_user(phone="+79161234567"),  # SMS, with its receipt
    ):
        notification_create(user=user, message="hello")

    expected = {
        ("telegram", "telegram", "success"): 2,
        ("telegram", "telegram", "rate_limited"): 1,
        ("telegram", "telegram", "permanent"): 1,
        ("email", "email", "success"): 1,
        ("telegram", "telegram", "skipped"): 1,
        ("email", "email", "skipped"): 1,
        ("sms", "sms_smpp", "success"): 1,
    }

    def counts() -> dict | None:
        status, text = fetch(f"http://127.0.0.1:{port}/metrics", TOKEN)
        if status != 200:
            return None
        seen = {
            key: value(
                text, "notify_attempts_total", channel=key[0], transport=key[1], outcome=key[2]
            )
            for key in expected
        }
        receipts = value(text, "notify_receipts_total", transport="sms_smpp", outcome="delivered")
        return text if seen == expected and receipts == 1 else None

    text = wait_for(
        counts, 60, lambda: f"these counts: {fetch(f'http://127.0.0.1:{port}/metrics', TOKEN)[1]}"
    )
    assert value(text, "notify_rate_limited_total", provider="telegram") == 1
    assert value(text, "notify_sms_segments_total", transport="sms_smpp") == 1
    assert value(text, "notify_send_duration_seconds_count", channel="telegram") == 4
    assert value(text, "notify_paced_jobs_waiting") == 0
    assert value(text, "notify_due_notifications") == 0
    assert value(text, "notify_consumers") == 1
    assert promtool_problems("check", "metrics", stdin=text) == ""
    assert fetch(f"http://127.0.0.1:{port}/metrics")[0] == 401  # no token, no metrics


# --- several processes --------------------------------------------------------------------------

COUNTING_PROCESS = """
import os
import django
django.setup()
from notifications.operations import metrics
metrics.notifications_created("api", [None] * {created})
metrics.rate_limited("telegram")
metrics.paced_jobs_waiting({waiting})
print(os.getpid())
"""


def run_counting_process(metrics_dir: Path, created: int, waiting: int) -> int:
    """A process of its own that counts into ``metrics_dir``; its pid."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "notifications.tests.settings",
        exposition.MULTIPROCESS_ENV: str(metrics_dir),
    }
    code = COUNTING_PROCESS.format(created=created, waiting=waiting)
    process = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )
    assert process.returncode == 0, process.stderr
    return int(process.stdout.split()[-1])


@pytest.mark.django_db
def test_counts_of_two_processes_add_up_in_one_scrape(client, token, tmp_path, monkeypatch):
    metrics_dir = exposition.prepare_multiprocess_dir(tmp_path / "metrics")
    first = run_counting_process(metrics_dir, created=3, waiting=2)
    run_counting_process(metrics_dir, created=4, waiting=5)
    monkeypatch.setenv(exposition.MULTIPROCESS_ENV, str(metrics_dir))
    exposition.scrape_registry.cache_clear()
    try:
        text = scrape(client)
        assert (
            value(text, "notify_notifications_created_total", source="api", category="default") == 7
        )
        assert value(text, "notify_rate_limited_total", provider="telegram") == 2
        assert value(text, "notify_paced_jobs_waiting") == 7
        assert value(text, "notify_due_notifications") == 0  # the database gauges too
        exposition.process_gone(first, metrics_dir)  # its jobs waiting no longer count
        text = scrape(client)
        assert value(text, "notify_paced_jobs_waiting") == 5
        assert (
            value(text, "notify_notifications_created_total", source="api", category="default") == 7
        )
    finally:
        exposition.scrape_registry.cache_clear()
