"""``manage.py runservice`` in multiprocess mode: gunicorn's workers and both consumers write
one directory, emptied at start, and the web's /metrics (and the first consumer's port) show
their counts added up."""

from __future__ import annotations

import json
import os
import signal
import urllib.request

import pytest

from notifications.api_keys import api_key_create
from notifications.operations.exposition import MULTIPROCESS_ENV, prepare_multiprocess_dir
from notifications.operations.tests.scrapes import fetch, value
from notifications.operations.tests.test_metrics import TOKEN, run_counting_process
from notifications.services import notification_create
from notifications.tests.fakes.smtp import free_port
from notifications.tests.fixtures import wait_for
from notifications.tests.harness import start_runservice, stop_runservice


def post_notification(port: int, key: str, user_id: int) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/notifications",
        data=json.dumps({"user": user_id, "message": "from the API"}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_runservice_adds_up_every_processs_counts_and_forgets_the_last_runs(
    consumer_env, telegram, make_user, tmp_path
):
    metrics_dir = prepare_multiprocess_dir(tmp_path / "metrics")
    run_counting_process(metrics_dir, created=50, waiting=9)  # left by an earlier run
    port, metrics_port = free_port(), free_port()
    env = {
        **consumer_env,
        "PORT": str(port),
        "NOTIFY_CONSUMERS": "2",
        "NOTIFY_WORKERS": "2",
        "TELEGRAM_UPDATES": "off",
        "NOTIFY_METRICS_TOKEN": TOKEN,
        "NOTIFY_METRICS_PORT": str(metrics_port),
        MULTIPROCESS_ENV: str(metrics_dir),
    }
    log = tmp_path / "runservice.log"
    process = start_runservice(env, log)
    web = f"http://127.0.0.1:{port}/metrics"
    try:

        def consumers() -> float | None:
            # Only a scrape is read: while gunicorn starts, an answer may be an error page.
            status, text = fetch(web, TOKEN)
            return value(text, "notify_consumers") if status == 200 else None

        wait_for(
            lambda: consumers() == 2,
            60,
            lambda: f"both consumers' heartbeats:\n{log.read_text()[-3000:]}",
        )
        _, key = api_key_create(name="shop")
        users = [make_user(telegram_chat_id=str(100 + n)) for n in range(6)]
        for user in users[:2]:
            assert post_notification(port, key, user.pk) == 202  # created by gunicorn
        for user in users[2:]:
            notification_create(user=user, message="from code")  # created here

        def merged(url: str) -> str | None:
            status, text = fetch(url, TOKEN)
            sent = value(text, "notify_attempts_total", **{
                "channel": "telegram", "transport": "telegram", "outcome": "success"
            }) if status == 200 else None  # fmt: skip
            return text if sent == 6 else None

        text = wait_for(lambda: merged(web), 60, lambda: fetch(web, TOKEN)[1])
        assert (
            value(text, "notify_notifications_created_total", source="api", category="default") == 2
        )
        assert value(text, "notify_paced_jobs_waiting") == 0  # the earlier run's 9 are gone
        port_text = wait_for(lambda: merged(f"http://127.0.0.1:{metrics_port}/metrics"), 30)
        assert (
            value(port_text, "notify_notifications_created_total", source="api", category="default")
            == 2
        )
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        stop_runservice(process)
    assert "Traceback" not in log.read_text()
