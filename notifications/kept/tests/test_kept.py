"""Issue 19: the dashboard and a campaign's page answer fast while a large campaign is created
and sent: their numbers are kept in a table every web process reads, for
NOTIFY_DASHBOARD_FRESH_SECONDS (a campaign's progress a fifth of it), then shown while one
process counts again behind; numbers older than NOTIFY_DASHBOARD_STALE_SECONDS that nobody
asked for for as long are counted while the request waits. The dashboard says when its
numbers were counted."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import F
from django.utils import timezone

from notifications.kept import codec
from notifications.kept import services as kept
from notifications.kept.models import KeptCount
from notifications.models import Notification
from notifications.tests.fixtures import database_url
from notifications.tests.harness import BASE_DIR, service_environ

pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()
TODAY = "dashboard:today"


@pytest.fixture
def cached(settings):
    settings.NOTIFY_DASHBOARD_FRESH_SECONDS = 10
    settings.NOTIFY_DASHBOARD_STALE_SECONDS = 60
    yield
    kept.forget()


def notify(user, count: int = 1) -> None:
    Notification.objects.bulk_create(Notification(user=user, message="hi") for _ in range(count))


def age(seconds: float, key: str = TODAY) -> None:
    """Make the kept numbers ``seconds`` old (counted that long ago, written just now)."""
    assert KeptCount.objects.filter(key=key).update(
        counted_at=F("counted_at") - timedelta(seconds=seconds)
    )


def idle(seconds: float, key: str = TODAY) -> None:
    """Nobody asked for them for ``seconds``: counted and written that long ago."""
    shift = timedelta(seconds=seconds)
    assert KeptCount.objects.filter(key=key).update(
        counted_at=F("counted_at") - shift, kept_at=F("kept_at") - shift
    )


def counting_elsewhere(key: str = TODAY, seconds: float = 30) -> None:
    """Another web process holds the key's lease: it is counting it for ``seconds`` more."""
    assert KeptCount.objects.filter(key=key).update(
        counting_until=timezone.now() + timedelta(seconds=seconds)
    )


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


def uncountable(monkeypatch) -> list[str]:
    """The dashboard's count made to fail, recording each call: nothing may count it now."""
    from notifications import statistics

    calls: list[str] = []

    def count(period):
        calls.append(period)
        raise AssertionError("counted")

    monkeypatch.setattr(statistics, "dashboard", count)
    return calls


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


def kept_total(key: str = TODAY) -> int:
    """The total of the dashboard's numbers as the table holds them."""
    return codec.decode(KeptCount.objects.get(key=key).value).total


def test_stale_numbers_are_shown_while_a_count_is_under_way_in_any_process(cached):
    """A count behind that takes longer than the stale time (beside the cancel of the rest
    of a million: the next load counted again in the request, for 18 s) leaves the kept
    numbers shown, whichever web process is counting; with none under way, stale numbers
    are counted in the request."""
    user = User.objects.create(username="d")
    notify(user, 3)
    assert kept.dashboard("today").total == 3
    notify(user, 2)
    idle(120)
    counting_elsewhere()  # another web process holds the lease: it is counting
    assert kept.dashboard("today").total == 3
    refreshed()
    assert kept_total() == 3  # not counted again here
    KeptCount.objects.filter(key=TODAY).update(counting_until=None)  # that count is done
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
    age(3, f"campaign:{campaign.pk}")  # past 10 / 5 s
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
    assert kept._get("workers", workers, 10) == expected
    if connection.vendor == "postgresql":
        assert workers() != "0"  # the request's own connection is left as it was


def test_a_web_process_shows_the_numbers_another_counted_without_counting_them(cached):
    """Each web process kept its own numbers: a gunicorn process's first look (or its first
    in a minute) waited a second for a count at a million rows, then rendered (the dashboard
    1.52 s once, bench-scale), and every process counted the same. Another process, its
    count made to fail, shows the numbers this one counted."""
    user = User.objects.create(username="d")
    notify(user, 3)
    assert kept.dashboard("today").total == 3
    script = (
        "import django; django.setup()\n"
        "from notifications import statistics\n"
        "from notifications.kept import services as kept\n"
        "def count(period): raise SystemExit('counted in the second process')\n"
        "statistics.dashboard = count\n"
        "print(kept.dashboard('today').total)\n"
    )
    env = service_environ(
        database_url(), django_settings.QUEUE_URL, NOTIFY_DASHBOARD_FRESH_SECONDS="10"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "3"), done.stderr[-2000:]


def test_a_first_look_waits_for_the_count_another_process_is_making(cached, monkeypatch):
    """Numbers none of which are kept yet, being counted by another web process: this one
    does not count them too, but waits (up to kept.WAIT_SECONDS) for that count's numbers."""
    from notifications import statistics

    user = User.objects.create(username="d")
    notify(user, 4)
    numbers = codec.encode(statistics.dashboard("today"))
    KeptCount.objects.create(key=TODAY)
    counting_elsewhere()
    calls = uncountable(monkeypatch)

    def other_process() -> None:
        try:
            KeptCount.objects.filter(key=TODAY).update(
                value=numbers,
                counted_at=timezone.now(),
                kept_at=timezone.now(),
                counting_until=None,
            )
        finally:
            connection.close()  # this thread's own

    monkeypatch.setattr(kept, "WAIT_SECONDS", 10)  # waits only until the numbers are written

    timer = threading.Timer(0.2, other_process)
    timer.start()
    try:
        assert kept.dashboard("today").total == 4
    finally:
        timer.join()
    assert calls == []


def test_a_lease_left_by_a_process_that_died_while_counting_runs_out(cached, monkeypatch):
    """A web process killed while counting leaves the key's lease: until it runs out the
    kept numbers are shown; then another process counts them."""
    user = User.objects.create(username="d")
    notify(user, 3)
    assert kept.dashboard("today").total == 3
    notify(user, 2)
    age(15)
    counting_elsewhere(seconds=30)  # a process holds it, then dies
    assert kept.dashboard("today").total == 3
    refreshed()
    assert kept_total() == 3
    counting_elsewhere(seconds=-1)  # its lease has run out
    assert kept.dashboard("today").total == 3  # shown, and counted behind
    refreshed()
    assert kept_total() == 5
    assert KeptCount.objects.get(key=TODAY).counting_until is None


def test_a_failed_count_gives_its_lease_back_and_keeps_the_numbers(cached, monkeypatch):
    user = User.objects.create(username="d")
    notify(user, 3)
    assert kept.dashboard("today").total == 3
    age(15)
    calls = uncountable(monkeypatch)
    assert kept.dashboard("today").total == 3
    refreshed()
    assert calls == ["today"]
    row = KeptCount.objects.get(key=TODAY)
    assert (codec.decode(row.value).total, row.counting_until) == (3, None)


def test_a_first_count_that_fails_leaves_no_row_and_the_next_load_counts_again(cached, monkeypatch):
    calls = uncountable(monkeypatch)
    assert kept.dashboard("today") is None  # being counted, then failed
    refreshed()
    assert calls == ["today"] and not KeptCount.objects.exists()
    monkeypatch.undo()
    assert kept.dashboard("today").total == 0


def test_numbers_nobody_asked_for_in_a_week_are_forgotten(cached):
    user = User.objects.create(username="d")
    campaign_key = "campaign:999"
    KeptCount.objects.create(
        key=campaign_key, value=None, kept_at=timezone.now() - timedelta(days=8)
    )
    notify(user)
    assert kept.dashboard("today").total == 1
    assert list(KeptCount.objects.values_list("key", flat=True)) == [TODAY]
