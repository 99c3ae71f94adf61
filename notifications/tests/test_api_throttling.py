"""Reading the API writes nothing per request: in the database the throttle books a client's
requests a batch at a time and remembers a refusal, and the limit still holds across
processes; every filter and depth of the list costs the same few queries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications import pacing
from notifications.api import throttling
from notifications.models import Notification

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications"
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def writes(queries) -> list[str]:
    """The statements that write or lock (by their first word: a SELECT may name a column
    ``updated_at``)."""
    return [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().split(None, 1)[0].upper() in WRITES or "FOR UPDATE" in q["sql"].upper()
    ]


@pytest.fixture
def listed(settings, admin_user):
    """120 notifications over five days, and the API's default rate."""
    settings.NOTIFY_API_RATE = (600, 60.0)
    now = datetime.now(UTC)
    made = Notification.objects.bulk_create(
        Notification(user=admin_user, message=f"m{i}", status="sent", channel="email")
        for i in range(120)
    )
    for i, notification in enumerate(made):
        Notification.objects.filter(pk=notification.pk).update(created_at=now - timedelta(hours=i))
    return now


def test_reading_the_list_at_any_depth_and_filter_writes_nothing(
    listed, make_api_client, admin_user
):
    api = make_api_client()
    deep = api.get(URL, {"limit": 10}).json()["next"]  # the key's use noted, a batch booked
    week_ago = (listed - timedelta(days=2)).isoformat()
    reads = [
        (URL, {}),
        (deep, {}),
        (URL, {"created_before": week_ago}),
        (URL, {"created_after": week_ago, "created_before": listed.isoformat()}),
        (URL, {"status": "sent", "channel": "email"}),
        (URL, {"user": admin_user.get_username()}),
    ]
    with CaptureQueriesContext(connection) as queries:
        for url, params in reads:
            assert api.get(url, params).status_code == 200
    assert writes(queries) == []
    # The key, the page; and the user's id when a username is given.
    assert len(queries.captured_queries) == 2 * len(reads) + 1


def in_database() -> bool:
    """Whether the throttle's schedule is the database's (no Redis queue)."""
    return isinstance(pacing.schedule(), pacing.DatabaseSchedule)


def booked(monkeypatch, client: str, rate, processes: int, requests: int) -> tuple[int, int]:
    """``requests`` of ``client`` spread over ``processes`` web processes in turn (each with
    its own leases), at ``rate``: how many were let through, and how many bookings were
    written."""
    held = [{} for _ in range(processes)]
    allowed = 0
    with CaptureQueriesContext(connection) as queries:
        for n in range(requests):
            monkeypatch.setattr(throttling, "_leases", held[n % processes])
            allowed += throttling.wait_for(client, rate, leased=True) is None
    return allowed, sum(q["sql"].startswith("UPDATE") for q in queries.captured_queries)


def test_a_client_spread_over_processes_gets_its_rate_and_no_more(monkeypatch):
    client = f"key:{uuid.uuid4().hex[:12]}"
    allowed, cost = booked(monkeypatch, client, (200, 3600.0), processes=3, requests=400)
    assert allowed == 200
    if in_database():
        assert cost <= 200 // throttling.LEASE_SHARE + 3  # ten a booking, a few one by one
    else:
        assert cost == 0


def test_a_refused_client_costs_no_query_until_its_next_slot(monkeypatch):
    client = f"key:{uuid.uuid4().hex[:12]}"
    assert booked(monkeypatch, client, (3, 3600.0), processes=1, requests=3)[0] == 3
    with CaptureQueriesContext(connection) as first:
        wait = throttling.wait_for(client, (3, 3600.0), leased=True)
    with CaptureQueriesContext(connection) as later:
        waits = [throttling.wait_for(client, (3, 3600.0), leased=True) for _ in range(5)]
    assert all(1000 < w <= 1200 for w in [wait, *waits])  # one comes back every 20 minutes
    if in_database():
        assert first.captured_queries and later.captured_queries == []
