"""Issue 19: the dashboard and a campaign's page answer fast while a large campaign is created
and sent: each web process keeps their numbers for NOTIFY_DASHBOARD_FRESH_SECONDS (a campaign's
progress a fifth of it), then shows them while one background thread counts again; numbers
older than NOTIFY_DASHBOARD_STALE_SECONDS that nobody looked at for as long are counted in
the request. The dashboard says when
its numbers were counted."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model

from notifications import kept
from notifications.models import Notification

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()


@pytest.fixture
def cached(settings):
    settings.NOTIFY_DASHBOARD_FRESH_SECONDS = 10
    settings.NOTIFY_DASHBOARD_STALE_SECONDS = 60
    kept.forget()
    yield
    kept.forget()


def notify(user, count: int = 1) -> None:
    Notification.objects.bulk_create(Notification(user=user, message="hi") for _ in range(count))


def age(seconds: float, key=("dashboard", "today")) -> None:
    """Make the kept numbers ``seconds`` old."""
    when, value = kept._kept[key]
    kept._kept[key] = (when - seconds, value)


def idle(seconds: float, key=("dashboard", "today")) -> None:
    """Nobody looked for ``seconds``: the kept numbers, and the last look, that old."""
    age(seconds, key)
    kept._looked[key] -= seconds


def held(monkeypatch, module, name: str) -> threading.Event:
    """``module.name`` (a count) held until the returned event is set; a load waits 0.2 s."""
    release = threading.Event()
    count = getattr(module, name)

    def slow(*args):
        release.wait(10)
        return count(*args)

    monkeypatch.setattr(module, name, slow)
    monkeypatch.setattr(kept, "WAIT_SECONDS", 0.2)
    return release


def refreshed() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("kept-"):
            thread.join(10)


def test_fresh_numbers_are_shown_as_kept_then_refreshed_behind_then_counted_when_stale(cached):
    user = User.objects.create(username="d")
    notify(user, 3)
    assert kept.dashboard("today").total == 3
    notify(user, 2)
    assert kept.dashboard("today").total == 3  # fresh: as kept

    age(15)  # past fresh: the kept numbers now, the next counted behind
    assert kept.dashboard("today").total == 3
    refreshed()
    assert kept.dashboard("today").total == 5

    notify(user, 4)
    idle(120)  # nobody looked for two minutes: counted in the request
    assert kept.dashboard("today").total == 9


def test_numbers_that_took_longer_than_the_stale_time_to_count_are_shown_while_watched(cached):
    """Beside the cancel of the rest of a million a count behind took longer than the stale
    time: its numbers were that old when kept, and the next load, a second later, counted
    them again in the request (13 s). Someone is looking: they are shown and counted behind."""
    user = User.objects.create(username="d")
    notify(user, 3)
    assert kept.dashboard("today").total == 3
    notify(user, 2)
    age(90)  # counted 90 s ago (a count that long), looked at just now
    assert kept.dashboard("today").total == 3
    refreshed()
    assert kept.dashboard("today").total == 5


def test_stale_numbers_are_shown_while_a_count_behind_is_still_under_way(cached):
    """A count behind that takes longer than the stale time (beside the cancel of the rest
    of a million: the next load counted again in the request, for 18 s) leaves the kept
    numbers shown; with none under way, stale numbers are counted in the request."""
    user = User.objects.create(username="d")
    notify(user, 3)
    assert kept.dashboard("today").total == 3
    notify(user, 2)
    key = ("dashboard", "today")
    kept._refreshing.add(key)  # a count behind, still under way
    try:
        idle(120)
        assert kept.dashboard("today").total == 3
    finally:
        kept._refreshing.discard(key)
    idle(120)
    assert kept.dashboard("today").total == 5


def test_zero_reads_every_load_live(settings):
    settings.NOTIFY_DASHBOARD_FRESH_SECONDS = 0
    user = User.objects.create(username="d")
    notify(user)
    assert kept.dashboard("today").total == 1
    notify(user)
    assert kept.dashboard("today").total == 2


def test_the_dashboard_page_says_when_its_numbers_were_counted(cached, admin_client):
    page = admin_client.get("/admin/dashboard/").content.decode()
    assert "counted at " in page


def test_a_campaigns_progress_is_kept_a_fifth_as_long_with_its_state_read_now(cached):
    from notifications.models import Campaign

    user = User.objects.create(username="d")
    campaign = Campaign.objects.create(name="c", message="hi")
    Notification.objects.create(user=user, message="hi", campaign=campaign)
    assert kept.campaign_progress(campaign).created == 1
    Notification.objects.create(user=user, message="hi", campaign=campaign)
    campaign.state = Campaign.State.CANCELLED
    progress = kept.campaign_progress(campaign)
    assert (progress.created, progress.campaign.state) == (1, Campaign.State.CANCELLED)
    age(3, ("campaign", campaign.pk))  # past 10 / 5 s
    kept.campaign_progress(campaign)
    refreshed()
    assert kept.campaign_progress(campaign).created == 2
    kept.outdate_campaign(campaign.pk)  # after an action on it: shown, and counted behind
    Notification.objects.create(user=user, message="hi", campaign=campaign)
    assert kept.campaign_progress(campaign).created == 2
    refreshed()
    assert kept.campaign_progress(campaign).created == 3


def test_a_first_count_longer_than_the_wait_is_said_to_be_under_way_then_shown(
    cached, admin_client, monkeypatch
):
    """A web process's first look at the dashboard, beside the cancel of the rest of a
    million, counted in the request for 12.6 s. It waits kept.WAIT_SECONDS for the count,
    then says the numbers are being counted and reloads; the count goes on behind."""
    from notifications import statistics

    release = held(monkeypatch, statistics, "dashboard")
    page = admin_client.get("/admin/dashboard/").content.decode()
    assert "being counted" in page and 'http-equiv="refresh"' in page
    assert "counted at " not in page
    release.set()
    refreshed()
    page = admin_client.get("/admin/dashboard/").content.decode()
    assert "counted at " in page and "being counted" not in page


def test_a_campaigns_page_being_counted_shows_its_figures_as_such_and_its_poll_fills_them(
    cached, admin_client, monkeypatch
):
    """A campaign's page in a web process that has not counted it yet, beside the cancel of
    the rest of a million, took 6 s. It waits kept.WAIT_SECONDS, then renders with each
    count shown as being counted; the poll says so until the count behind is done."""
    from notifications import selectors
    from notifications.models import Campaign

    user = User.objects.create(username="d")
    campaign = Campaign.objects.create(name="Spring", message="hi", skipped=2)
    Notification.objects.create(user=user, message="hi", campaign=campaign)
    release = held(monkeypatch, selectors, "campaign_progress")
    page = admin_client.get(f"/admin/notifications/campaign/{campaign.pk}/change/")
    assert page.status_code == 200
    box = page.content.decode()
    assert 'data-nf-text="created">…<' in box and 'data-nf-text="skipped">2<' in box
    assert "Cancel the rest" in box  # offered while counted: a cancel with nothing left says so
    poll = admin_client.get(f"/admin/notifications/campaign/{campaign.pk}/progress/").json()
    assert (poll["done"], poll["text"]["created"]) == (False, "…")
    release.set()
    refreshed()
    poll = admin_client.get(f"/admin/notifications/campaign/{campaign.pk}/progress/").json()
    assert poll["text"]["created"] == "1"


def test_counts_behind_are_planned_without_parallel_workers(cached):
    """A count behind takes one core of PostgreSQL's, not all: its plan has no parallel
    workers (after a million's ANALYZE the counts were parallel scans, and the pages beside
    them slowed past 1 s). A count in the request (none kept yet) is counted behind too."""
    from django.db import connection

    def workers() -> str:
        if connection.vendor != "postgresql":
            return "sqlite"
        with connection.cursor() as cursor:
            cursor.execute("SHOW max_parallel_workers_per_gather")
            return cursor.fetchone()[0]

    expected = "0" if connection.vendor == "postgresql" else "sqlite"
    assert kept._get(("workers",), workers, 10) == expected
    if connection.vendor == "postgresql":
        assert workers() != "0"  # the request's own connection is left as it was
