"""``/healthz`` and ``/readyz``: what a load balancer asks, against real failures (a database
that refuses connections, a queue nobody listens on, a consumer that stopped)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from huey import RedisHuey

from notifications.operations import checks
from notifications.operations.models import ConsumerHeartbeat
from notifications.tests.fakes.smtp import free_port
from notifications.tests.fixtures import wait_for


def heartbeat(seconds_ago: float = 0) -> ConsumerHeartbeat:
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    return ConsumerHeartbeat.objects.create(
        host="consumer-host", pid=4242, started_at=seen, seen_at=seen, workers=4, paced_threads=4
    )


@pytest.fixture
def database_down(transactional_db) -> Iterator[str]:
    """The connection's settings point at a database that isn't there (SQLite: a file in a
    missing folder; PostgreSQL: a port nobody listens on). Yields what the answers must not
    disclose."""
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        secret = "/no-such-folder-7f3a/db.sqlite3"
        connection.settings_dict["NAME"] = secret
    else:
        secret = str(free_port())
        connection.settings_dict.update(HOST="127.0.0.1", PORT=secret)
    yield secret
    connection.close()
    connection.settings_dict.clear()
    connection.settings_dict.update(saved)


def test_healthz_answers_200_while_the_database_is_down(client, database_down):
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_readyz_names_the_database_when_it_is_down_and_discloses_nothing(client, database_down):
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["database"] == "unreachable"
    assert answer.json()["status"] == "unavailable"
    for hidden in (database_down, "127.0.0.1", "no-such-folder", "Error", "refused"):
        assert hidden not in answer.text


@pytest.mark.django_db
def test_readyz_names_unapplied_migrations(client):
    heartbeat()
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'operations' AND name = '0001_initial'"
        )
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"] == {
        "database": "ok",
        "migrations": "1 not applied",
        "queue": "ok",
        "consumer": "ok",
    }


@pytest.mark.django_db
def test_readyz_names_the_queue_when_it_is_unreachable(client, monkeypatch):
    heartbeat()
    port = free_port()
    monkeypatch.setattr(checks, "HUEY", RedisHuey("probe", url=f"redis://127.0.0.1:{port}/0"))
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "queue": "unreachable",
        "consumer": "ok",
    }
    assert str(port) not in answer.text


@pytest.mark.django_db
def test_readyz_names_the_consumer_when_no_heartbeat_is_fresh(client, settings):
    settings.NOTIFY_READY_HEARTBEAT_SECONDS = 30
    assert client.get("/readyz").json()["checks"]["consumer"] != "ok"  # none at all
    heartbeat(seconds_ago=45)
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "queue": "ok",
        "consumer": "no heartbeat in NOTIFY_READY_HEARTBEAT_SECONDS",
    }
    heartbeat(seconds_ago=5)
    assert client.get("/readyz").status_code == 200


@pytest.mark.django_db
def test_probes_answer_any_host_over_plain_http_even_with_https_redirect_on(client, settings):
    """A load balancer calls the backend by its address, over HTTP."""
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["notify.example.com"]
    heartbeat()
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/readyz/", HTTP_HOST="10.1.2.3:8000").status_code == 200
    assert client.get("/admin/", HTTP_HOST="10.1.2.3:8000").status_code == 400  # the rest: no


@pytest.mark.e2e
def test_readyz_is_200_while_a_real_consumer_runs_and_its_row_goes_when_it_stops(
    client, start_consumer
):
    assert client.get("/readyz").json()["checks"]["consumer"] != "ok"
    consumer = start_consumer(workers=3, NOTIFY_PACED_THREADS="2").wait_started()
    wait_for(lambda: client.get("/readyz").status_code == 200, 30, "/readyz to answer 200")
    row = wait_for(
        lambda: ConsumerHeartbeat.objects.filter(pid=consumer.pid, workers=3).first(),
        30,
        "the heartbeat to count the consumer's three workers",
    )
    assert row.paced_threads == 2
    consumer.stop(signal.SIGINT)  # a clean stop
    assert not ConsumerHeartbeat.objects.filter(pid=consumer.pid).exists()
    assert client.get("/readyz").json()["checks"]["consumer"] != "ok"
