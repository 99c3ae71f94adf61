"""Error reports to Sentry: off by default; with ``SENTRY_DSN``, an error in a request reaches
the server (a fake Sentry on 127.0.0.1) with every secret masked."""

from __future__ import annotations

import json

import pytest
import sentry_sdk
from django.http import HttpResponse
from django.urls import path
from huey import MemoryHuey
from sentry_sdk.integrations.huey import HueyIntegration

from notifications.operations import sentry
from notifications.tests.fakes.sentry import FakeSentry

TOKEN = "123456:AAE-very-secret-bot-token"


def broken_view(request) -> HttpResponse:
    url = f"https://api.telegram.org/bot{TOKEN}/sendMessage"  # a local the report would show
    raise RuntimeError(f"Telegram unreachable at {url}")


urlpatterns = [path("broken/", broken_view)]


@pytest.fixture
def fake_sentry():
    fake = FakeSentry().start()
    yield fake
    # No DSN: reporting off again for the rest of the suite (and huey left as it is).
    sentry_sdk.init(disabled_integrations=[HueyIntegration()])
    fake.stop()


def test_reporting_is_off_without_a_dsn(settings):
    settings.SENTRY_DSN = ""
    assert sentry.init() is False


@pytest.mark.django_db
def test_an_error_reaches_sentry_with_its_secrets_masked(client, settings, fake_sentry):
    settings.SENTRY_DSN = fake_sentry.dsn
    settings.SENTRY_ENVIRONMENT = "test"
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.ROOT_URLCONF = __name__
    assert sentry.init() is True
    client.raise_request_exception = False

    response = client.get("/broken/", HTTP_AUTHORIZATION="Bearer nsk_abcdefgh_secretkey")
    sentry_sdk.flush(timeout=5)

    assert response.status_code == 500
    (event,) = fake_sentry.wait_for_events(1)
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert (
        exception["value"] == "Telegram unreachable at https://api.telegram.org/bot***/sendMessage"
    )
    assert event["environment"] == "test"
    everything = b"".join(fake_sentry.raw).decode()
    assert TOKEN not in everything  # nowhere: message, frames' locals, breadcrumbs
    assert "nsk_abcdefgh_secretkey" not in everything  # the Authorization header is not sent
    frames = exception["stacktrace"]["frames"]
    view = next(frame for frame in frames if frame["function"] == "broken_view")
    assert "bot***" in json.dumps(view.get("vars", {}))


def test_tasks_enqueued_with_sentry_on_are_what_a_consumer_without_it_runs(settings, fake_sentry):
    """A web process with SENTRY_DSN enqueues tasks exactly as one without: sentry's huey
    integration would add a ``sentry_headers`` argument that fails every task in a consumer
    without Sentry."""
    settings.SENTRY_DSN = fake_sentry.dsn
    assert sentry.init() is True
    queue = MemoryHuey(immediate=False)

    @queue.task()
    def deliver(ids):
        return ids

    deliver([1, 2])
    message = queue.dequeue()
    assert (message.args, message.kwargs) == (([1, 2],), {})
