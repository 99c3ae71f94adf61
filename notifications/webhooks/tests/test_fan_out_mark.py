"""Fanning events out into deliveries: on SQLite by the lane's high-water mark
(``WebhookFanOutMark``), the events written already flagged by the trigger; on PostgreSQL by
each event's ``fanned_out``. The promises are the same either way, and are tested on both:
each event's deliveries are made once, none is lost when a lane stops between batches or dies
inside one, the backlog gauge counts what waits, and the prune never takes an event still to
fan out. The upgrade to the mark (migration 0003) is SQLite's alone."""

from __future__ import annotations

import functools
from collections import Counter
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from notifications.models import Notification
from notifications.operations.collectors import DatabaseCollector
from notifications.tests.fixtures import wait_for
from notifications.webhooks import outbox
from notifications.webhooks.models import WebhookDelivery, WebhookEvent, WebhookFanOutMark
from notifications.webhooks.tests.util import set_status

pytestmark = pytest.mark.django_db
Delivery = WebhookDelivery.Status
HOOK = "https://hooks.example.com/notify"
sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the mark is SQLite's; PostgreSQL goes by the flag"
)


@pytest.fixture
def sent(make_user):
    """``sent(n)``: n notifications sent (each writes its event), their events in id order."""
    user = make_user(email="a@example.com")

    def make(n: int) -> list[WebhookEvent]:
        before = WebhookEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        for i in range(n):
            notification = Notification.objects.create(user=user, message=f"m{i}", status="sending")
            set_status(notification, "sent")
        return list(WebhookEvent.objects.filter(id__gt=before).order_by("id"))

    return make


def mark() -> int | None:
    return WebhookFanOutMark.objects.filter(pk=1).values_list("last_event_id", flat=True).first()


def deliveries_per_event() -> Counter[int]:
    return Counter(WebhookDelivery.objects.values_list("event_id", flat=True))


def pending_gauge() -> tuple[float, float]:
    """``notify_webhook_pending`` and ``notify_webhook_oldest_pending_age_seconds``."""
    found = {
        sample.name: sample.value
        for family in DatabaseCollector().collect()
        for sample in family.samples
    }
    return found["notify_webhook_pending"], found["notify_webhook_oldest_pending_age_seconds"]


def test_the_trigger_writes_sqlites_events_flagged_and_the_lane_goes_by_the_mark(
    make_endpoint, sent
):
    make_endpoint(HOOK)
    [event] = sent(1)
    # SQLite: flagged as written, so the event never enters the partial index of the flag.
    assert event.fanned_out is outbox.by_mark()
    assert list(outbox.unfanned()) == [event]
    assert outbox.fan_out() == 1 and outbox.fan_out() == 0
    assert not outbox.unfanned().exists()
    assert deliveries_per_event() == {event.pk: 1}
    event.refresh_from_db()
    assert event.fanned_out
    if outbox.by_mark():
        assert mark() == event.pk
        assert not WebhookEvent.objects.filter(fanned_out=False).exists()


@pytest.mark.django_db(transaction=True)
def test_each_event_arrives_once_when_a_lane_stopped_between_batches(
    webhook_receiver, make_endpoint, sent, run_lane, monkeypatch
):
    _, secret = make_endpoint(webhook_receiver.url)
    first = sent(12)
    assert outbox.fan_out(limit=5) == 5  # a lane's batch; then it stops
    assert [e.pk for e in outbox.unfanned().order_by("id")] == [e.pk for e in first[5:]]
    later = sent(6)  # written while no lane runs
    # The next lane takes the rest in small batches: from the mark on, none skipped.
    monkeypatch.setattr(outbox, "fan_out", functools.partial(outbox.fan_out, limit=4))
    run_lane()
    events = first + later

    def done() -> bool:
        rows = WebhookDelivery.objects
        return (
            not outbox.unfanned().exists()
            and rows.count() == len(events)
            and not rows.filter(status=Delivery.PENDING).exists()
        )

    wait_for(done, what=lambda: f"{webhook_receiver.count()} of {len(events)} webhooks")
    assert Counter(r.id for r in webhook_receiver.requests()) == {e.message_id: 1 for e in events}
    assert sorted(p["data"]["version"] for p in webhook_receiver.verified(secret)) == [
        e.pk for e in events
    ]
    assert deliveries_per_event() == {e.pk: 1 for e in events}
    assert set(WebhookDelivery.objects.values_list("status", "attempts")) == {
        (Delivery.SUCCEEDED, 1)
    }
    if outbox.by_mark():
        assert mark() == events[-1].pk


def test_a_lane_that_dies_inside_a_batch_leaves_its_events_to_the_next(
    make_endpoint, sent, monkeypatch
):
    make_endpoint(HOOK)
    events = sent(3)
    before = mark()

    def dies(*args, **kwargs):
        raise RuntimeError("the lane died")

    with monkeypatch.context() as patch:
        patch.setattr(WebhookDelivery.objects, "bulk_create", dies)  # PostgreSQL's
        patch.setattr(outbox, "_make_deliveries", dies)  # SQLite's, after the mark moved
        with pytest.raises(RuntimeError):
            outbox.fan_out()
    assert mark() == before  # rolled back with the batch
    assert [e.pk for e in outbox.unfanned().order_by("id")] == [e.pk for e in events]
    assert outbox.fan_out() == 3
    assert deliveries_per_event() == {e.pk: 1 for e in events}


def test_the_backlog_gauge_counts_events_not_fanned_out_and_deliveries_waiting(make_endpoint, sent):
    endpoint, _ = make_endpoint(HOOK)
    events = sent(5)
    assert pending_gauge() == (5, pytest.approx(0, abs=60))
    assert outbox.fan_out(limit=2) == 2
    WebhookEvent.objects.filter(pk=events[2].pk).update(
        created_at=timezone.now() - timedelta(seconds=300)
    )
    count, age = pending_gauge()
    assert count == 5 and 300 <= age < 600  # 2 deliveries waiting, 3 events not fanned out
    endpoint.enabled = False  # its waiting deliveries wait on purpose: not the outbox's lag
    endpoint.save()
    count, age = pending_gauge()
    assert count == 3 and 300 <= age < 600
    assert outbox.fan_out() == 3  # taken; no delivery for a disabled endpoint
    assert pending_gauge() == (0, 0)


def test_the_prune_never_takes_an_event_still_to_fan_out(make_endpoint, sent, settings):
    make_endpoint(HOOK)
    events = sent(4)
    assert outbox.fan_out(limit=2) == 2
    long_ago = timezone.now() - timedelta(days=settings.NOTIFY_WEBHOOK_EVENT_DAYS + 1)
    WebhookEvent.objects.update(created_at=long_ago)
    WebhookDelivery.objects.update(status=Delivery.SUCCEEDED, finished_at=long_ago)
    outbox.prune()
    kept = set(WebhookEvent.objects.values_list("id", flat=True))
    assert {events[2].pk, events[3].pk} <= kept  # not fanned out yet: kept, however old
    assert events[0].pk not in kept
    # SQLite keeps the event at the mark: the table's largest id stays at the mark or above.
    assert (events[1].pk in kept) is outbox.by_mark()
    assert outbox.fan_out() == 2
    left = events[1:] if outbox.by_mark() else events[2:]
    assert deliveries_per_event() == {e.pk: 1 for e in left}


@sqlite_only
def test_without_its_row_the_mark_restarts_after_the_last_event_with_a_delivery(
    make_endpoint, sent
):
    make_endpoint(HOOK)
    first = sent(3)
    assert outbox.fan_out() == 3
    WebhookFanOutMark.objects.all().delete()  # a test's flush, or deleted by hand
    assert not outbox.unfanned().exists()  # those have their deliveries
    later = sent(2)
    assert [e.pk for e in outbox.unfanned().order_by("id")] == [e.pk for e in later]
    assert outbox.fan_out() == 2 and mark() == later[-1].pk
    assert deliveries_per_event() == {e.pk: 1 for e in first + later}


def migrate_webhooks(target: str | None = None) -> None:
    args = ["webhooks", target] if target else ["webhooks"]
    call_command("migrate", *args, verbosity=0)


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_an_upgrade_fans_out_every_event_the_old_lane_had_not_and_none_twice(make_endpoint, sent):
    endpoint, _ = make_endpoint(HOOK)
    before = sent(4)
    assert outbox.fan_out(limit=2) == 2
    migrate_webhooks("0002_outbox_triggers")  # back to the flags: those above the mark lose it
    try:
        assert [e.fanned_out for e in WebhookEvent.objects.order_by("id")] == [
            True,
            True,
            False,
            False,
        ]
        old = sent(4)  # the old trigger: unflagged
        assert {e.fanned_out for e in old} == {False}
        # The old lane fans out two more: their deliveries, then their flags.
        taken = before[2:]
        WebhookDelivery.objects.bulk_create(
            WebhookDelivery(event=e, endpoint=endpoint, next_attempt_at=timezone.now())
            for e in taken
        )
        WebhookEvent.objects.filter(pk__in=[e.pk for e in taken]).update(fanned_out=True)
    finally:
        migrate_webhooks()
    assert mark() == old[0].pk - 1
    # An old lane still running finds nothing to do: the new one's mark has them.
    assert not WebhookEvent.objects.filter(fanned_out=False).exists()
    assert [e.pk for e in outbox.unfanned().order_by("id")] == [e.pk for e in old]
    new = sent(1)  # the new trigger: flagged, above the mark
    assert new[0].fanned_out
    assert outbox.fan_out() == 5
    assert deliveries_per_event() == {e.pk: 1 for e in before + old + new}
    pending, _ = pending_gauge()
    assert pending == len(before + old + new)  # every delivery waits; no event does


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_an_upgrade_with_every_event_fanned_out_starts_the_mark_at_the_last(make_endpoint, sent):
    make_endpoint(HOOK)
    migrate_webhooks("0002_outbox_triggers")
    try:
        old = sent(3)
        WebhookEvent.objects.update(fanned_out=True)  # the old lane took them all
    finally:
        migrate_webhooks()
    assert mark() == old[-1].pk
    assert not outbox.unfanned().exists()
    assert outbox.fan_out() == 0
