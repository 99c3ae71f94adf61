"""Fixtures of the webhooks tests: a receiver on 127.0.0.1, endpoints pointing at it, and a
webhook lane running in the test process (the end-to-end tests run the real consumer's)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from notifications.webhooks.lane import Lane
from notifications.webhooks.models import WebhookEndpoint
from notifications.webhooks.services import webhook_endpoint_create
from notifications.webhooks.tests.receiver import WebhookReceiver
from notifications.webhooks.tests.util import FAST_SCHEDULE


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.close()


@pytest.fixture
def make_endpoint(settings, db) -> Callable[..., tuple[WebhookEndpoint, str]]:
    """``make_endpoint(url, event_types=[…])``: an endpoint and its secret (http allowed)."""
    settings.DEBUG = True  # the receivers speak plain http

    def make(url: str, **fields) -> tuple[WebhookEndpoint, str]:
        endpoint, secret = webhook_endpoint_create(url=url, **fields)
        return endpoint, secret

    return make


@pytest.fixture
def fast_retries(settings) -> list[float]:
    settings.NOTIFY_WEBHOOK_RETRY_SCHEDULE = FAST_SCHEDULE
    settings.NOTIFY_WEBHOOK_TIMEOUT = 1.0
    return FAST_SCHEDULE


@pytest.fixture
def run_lane(transactional_db, fast_retries) -> Iterator[Callable[..., Lane]]:
    """``run_lane(threads=2)``: a webhook lane in this process, stopped after the test."""
    started: list[Lane] = []

    def start(threads: int = 2) -> Lane:
        lane = Lane(threads)
        lane.start()
        started.append(lane)
        return lane

    yield start
    for lane in started:
        lane.stop(timeout=5)
