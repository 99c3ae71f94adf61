"""Issue 19: the dashboard answers fast while a large campaign is created and sent: each web
process keeps its numbers for NOTIFY_DASHBOARD_FRESH_SECONDS, then shows them while one
background thread counts again; numbers older than NOTIFY_DASHBOARD_STALE_SECONDS are counted
in the request. The page says when they were counted."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from notifications import dashboard_cache
from notifications.models import Notification

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()


@pytest.fixture
def cached(settings):
    settings.NOTIFY_DASHBOARD_FRESH_SECONDS = 10
    settings.NOTIFY_DASHBOARD_STALE_SECONDS = 60
    dashboard_cache.forget()
    yield
    dashboard_cache.forget()


def notify(user, count: int = 1) -> None:
    Notification.objects.bulk_create(Notification(user=user, message="hi") for _ in range(count))


def age(seconds: float) -> None:
    """Make the kept numbers of today ``seconds`` old."""
    kept = dashboard_cache._kept["today"]
    kept.now -= timedelta(seconds=seconds)


def refreshed() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("dashboard-"):
            thread.join(10)


def test_fresh_numbers_are_shown_as_kept_then_refreshed_behind_then_counted_when_stale(cached):
    user = User.objects.create(username="d")
    notify(user, 3)
    assert dashboard_cache.dashboard("today").total == 3
    notify(user, 2)
    assert dashboard_cache.dashboard("today").total == 3  # fresh: as kept

    age(15)  # past fresh: the kept numbers now, the next counted behind
    assert dashboard_cache.dashboard("today").total == 3
    refreshed()
    assert dashboard_cache.dashboard("today").total == 5

    notify(user, 4)
    age(120)  # nobody looked for two minutes: counted in the request
    assert dashboard_cache.dashboard("today").total == 9


def test_zero_reads_every_load_live(settings):
    settings.NOTIFY_DASHBOARD_FRESH_SECONDS = 0
    user = User.objects.create(username="d")
    notify(user)
    assert dashboard_cache.dashboard("today").total == 1
    notify(user)
    assert dashboard_cache.dashboard("today").total == 2


def test_the_dashboard_page_says_when_its_numbers_were_counted(cached, admin_client):
    page = admin_client.get("/admin/dashboard/").content.decode()
    assert "counted at " in page
