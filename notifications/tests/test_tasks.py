"""The task layer: doorbells in batches, and pacing that never holds a worker (the lane)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import services, tasks
from notifications.models import ApiIdempotencyKey, Notification
from notifications.operations import heartbeat
from notifications.operations.models import ConsumerHeartbeat
from notifications.tests.fixtures import wait_for

Status = Notification.Status


@pytest.mark.django_db  # no consumer has reported: the settings size the doorbells
def test_ring_spreads_few_ids_over_the_workers_and_batches_many(settings, monkeypatch):
    settings.NOTIFY_WORKERS, settings.NOTIFY_CONSUMERS, settings.NOTIFY_BATCH_SIZE = 4, 1, 10
    messages: list[list[int]] = []
    monkeypatch.setattr(tasks, "_put_now", lambda put: messages.extend(m.args[0] for m in put))
    tasks.ring(range(3))
    assert messages == [[0], [1], [2]]
    messages.clear()
    tasks.ring(range(100))  # about four messages per worker
    assert [len(m) for m in messages] == [7] * 14 + [2]
    messages.clear()
    tasks.ring(range(1000))  # many: at most NOTIFY_BATCH_SIZE each
    assert [len(m) for m in messages] == [10] * 100
    assert sorted(i for m in messages for i in m) == list(range(1000))


def consumer_alive(host: str, workers: int, seconds_ago: float = 1) -> None:
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    ConsumerHeartbeat.objects.create(
        host=host, pid=1, started_at=seen, seen_at=seen, workers=workers, paced_threads=workers
    )


@pytest.mark.django_db
def test_doorbells_are_sized_from_the_consumers_alive_now(settings, monkeypatch):
    """Issue 19: with no NOTIFY_WORKERS set in the web (its default, 8), two consumers of 16
    threads each are what 2,000 ids are split for: 125 messages of 16 (about four per
    worker), not 40 of 50 for 8 workers. A consumer whose heartbeat went stale counts for
    nothing; when every one has gone, the settings size them again."""
    settings.NOTIFY_WORKERS, settings.NOTIFY_CONSUMERS, settings.NOTIFY_BATCH_SIZE = 8, 1, 50
    messages: list[list[int]] = []
    monkeypatch.setattr(tasks, "_put_now", lambda put: messages.extend(m.args[0] for m in put))
    consumer_alive("host-a", 16)
    consumer_alive("host-b", 16)
    consumer_alive("host-gone", 64, seconds_ago=settings.NOTIFY_READY_HEARTBEAT_SECONDS + 5)
    assert tasks.doorbell_workers() == 32
    tasks.ring(range(2000))
    assert [len(m) for m in messages] == [16] * 125
    assert sorted(i for m in messages for i in m) == list(range(2000))

    ConsumerHeartbeat.objects.all().delete()
    heartbeat.forget_live()
    messages.clear()
    tasks.ring(range(2000))
    assert [len(m) for m in messages] == [50] * 40


@pytest.mark.django_db
def test_the_doorbell_setting_overrides_the_heartbeats(settings):
    consumer_alive("host-a", 16)
    settings.NOTIFY_DOORBELL_THREADS = 4
    assert tasks.doorbell_workers() == 4
    settings.NOTIFY_DOORBELL_THREADS = 0
    assert tasks.doorbell_workers() == 16


@pytest.mark.e2e
def test_a_real_consumers_threads_size_the_webs_doorbells(settings, start_consumer):
    """The consumer alone is told its threads (6); this process, the web's stand-in, keeps
    the default NOTIFY_WORKERS and still sizes for 6."""
    settings.NOTIFY_WORKERS, settings.NOTIFY_CONSUMERS = 8, 1
    start_consumer(workers=6).wait_started()
    # Its first heartbeat, written as its first thread starts, already counts all six: a
    # click right after a consumer came up must not size doorbells for one thread.
    first = wait_for(
        lambda: ConsumerHeartbeat.objects.first(), 30, "the consumer's first heartbeat"
    )
    assert first.workers == 6
    assert heartbeat.live_workers(cached=False) == 6
    heartbeat.forget_live()
    assert tasks.doorbell_workers() == 6
    assert tasks._batch_size(2000) == 50 and tasks._batch_size(240) == 10


@pytest.fixture
def lane(monkeypatch):
    lane = tasks.Lane(threads=2)
    monkeypatch.setattr(tasks, "_lane", lane)
    yield lane
    lane.stop()


@pytest.fixture
def paced(settings, telegram, smtp):
    # A free pace to start from: fixtures._free_pace.
    settings.TELEGRAM_BOT_TOKEN = telegram.token
    settings.TELEGRAM_API_URL = telegram.url
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.NOTIFY_TELEGRAM_RATE = 2.0  # one slot every half second
    settings.NOTIFY_TELEGRAM_CHAT_RATE = 0
    settings.NOTIFY_TELEGRAM_PACE_MAX_WAIT = 10
    return settings


@pytest.mark.django_db(transaction=True)
def test_a_worker_is_not_held_while_telegram_waits_for_its_slots(
    paced, lane, telegram, smtp, make_user, monkeypatch
):
    """Four Telegram and four email-only notifications in one task: the task returns with
    every email sent and the Telegram ones waiting for their slots in the lane."""
    monkeypatch.setattr(tasks, "ring", lambda ids, eta=None, size=None: None)
    paced.NOTIFY_SEND_ON_CREATE = False
    ids = []
    for i in range(4):
        ids.append(
            services.notification_create(
                user=make_user(telegram_chat_id=str(500 + i)), message=f"tg {i}"
            ).pk
        )
        ids.append(
            services.notification_create(
                user=make_user(email=f"e{i}@example.com"), message=f"mail {i}"
            ).pk
        )
    services.notifications_queue(queryset=Notification.objects.filter(pk__in=ids))

    claimed = tasks.deliver.call_local(ids)

    assert claimed == 8
    assert len(smtp.received) == 4  # all email went out while Telegram waited
    assert lane.waiting() >= 2
    statuses = dict(Notification.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert sum(s == Status.SENDING for s in statuses.values()) >= 2
    wait_for(
        lambda: (
            set(Notification.objects.filter(pk__in=ids).values_list("status", flat=True))
            == {Status.SENT}
        ),
        timeout=15,
        what="every notification to be sent",
    )
    assert len(telegram.messages) == 4


@pytest.mark.django_db(transaction=True)
def test_stopping_gives_waiting_jobs_back_to_the_queue(
    paced, lane, telegram, make_user, monkeypatch
):
    rung: list[tuple] = []
    monkeypatch.setattr(
        tasks, "ring", lambda ids, eta=None, size=None: rung.append((list(ids), eta))
    )
    paced.NOTIFY_TELEGRAM_RATE = 0.2  # a slot every five seconds
    paced.NOTIFY_TELEGRAM_PACE_MAX_WAIT = 30
    ids = [
        services.notification_create(user=make_user(telegram_chat_id=str(600 + i)), message="x").pk
        for i in range(3)
    ]
    tasks.deliver.call_local(ids)
    assert lane.waiting() == 2
    lane.stop()
    rows = Notification.objects.filter(pk__in=ids).order_by("pk")
    assert [r.status for r in rows].count(Status.QUEUED) == 2
    for row in rows:
        if row.status == Status.QUEUED:
            assert row.rounds == 0  # being given back is not a round
            assert row.next_attempt_at <= timezone.now()
    given_back = [ids for ids, eta in rung if eta is not None]  # the rest: rung at creation
    assert len(given_back) == 2


@pytest.mark.django_db(transaction=True)
def test_a_task_that_breaks_mid_batch_gives_back_the_ones_it_had_not_started(
    make_user, monkeypatch
):
    """What breaks one notification's round (here a bug) leaves that one to its lease, and
    the rest of the task's batch goes back to the queue at once, not counted as a round,
    instead of waiting out their leases as if their worker had died."""
    rung: list[tuple] = []
    monkeypatch.setattr(
        tasks, "ring", lambda ids, eta=None, size=None: rung.append((list(ids), eta))
    )
    ids = [
        services.notification_create(user=make_user(telegram_chat_id=str(700 + i)), message="x").pk
        for i in range(3)
    ]
    rung.clear()

    def broken(job):
        raise RuntimeError("a bug in the round")

    monkeypatch.setattr(tasks, "drive", broken)
    with pytest.raises(RuntimeError):
        tasks.deliver.call_local(ids)

    rows = {row.pk: row for row in Notification.objects.filter(pk__in=ids)}
    assert rows[ids[0]].status == Status.SENDING  # its lease decides
    for pk in ids[1:]:
        assert (rows[pk].status, rows[pk].rounds, rows[pk].lease_expires_at) == (
            Status.QUEUED,
            0,
            None,
        )
        assert rows[pk].next_attempt_at <= timezone.now()
    assert sorted(i for chunk, _ in rung for i in chunk) == ids[1:]


def test_a_worker_takes_only_paced_jobs_whose_slot_has_come_and_only_from_a_busy_lane():
    """With no lane thread free, a worker may send a job whose slot has come; one whose slot
    is later is never handed to a worker (that would be waiting in it)."""
    busy = tasks.Lane(threads=0)  # every lane thread busy: none free
    due, later, also_due = object(), object(), object()  # jobs are opaque to the lane
    busy.call_at(time.time() + 60, later)
    busy.call_at(time.time() - 1, due)
    busy.call_at(time.time() - 0.5, also_due)
    assert busy.take_due() is due  # the earliest slot first
    assert busy.take_due() is also_due
    assert busy.take_due() is None
    assert busy.waiting() == 1


@pytest.mark.django_db
def test_ring_due_rings_scheduled_ones_once_per_time(monkeypatch):
    rung: list = []
    monkeypatch.setattr(
        tasks, "ring", lambda ids, eta=None, size=None: rung.append((sorted(ids), eta))
    )
    later = timezone.now() + timedelta(hours=1)
    tasks.ring_due([(1, None), (2, later), (3, later), (4, timezone.now())])
    assert rung == [([1, 4], None), ([2, 3], later)]


@pytest.mark.django_db
def test_a_chunk_due_at_ten_local_times_rings_about_as_often_as_at_one(settings, monkeypatch):
    """Issue 16: a campaign at 10:00 in each recipient's zone is split for all its times
    together: 320 ids over 10 times ring 40 doorbells (4 each), not 320 (32 of one id each)."""
    settings.NOTIFY_WORKERS, settings.NOTIFY_CONSUMERS, settings.NOTIFY_BATCH_SIZE = 8, 1, 100
    messages: list = []
    monkeypatch.setattr(tasks, "_enqueue", messages.append)
    start = timezone.now() + timedelta(hours=1)
    tasks.ring_due([(pk, start + timedelta(hours=pk % 10)) for pk in range(320)])
    assert len(messages) == 40
    messages.clear()
    tasks.ring_due([(pk, start) for pk in range(320)])
    assert len(messages) == 32


@pytest.mark.django_db
def test_campaign_fill_creates_every_chunk_and_rings_each(settings, monkeypatch, django_user_model):
    from notifications.models import Campaign

    # A message's campaign is created ten chunks a step (campaign_sets.CHUNKS): 20 here.
    settings.NOTIFY_CAMPAIGN_CHUNK = 2
    rung: list = []
    monkeypatch.setattr(tasks, "ring", lambda ids, eta=None, size=None: rung.append(sorted(ids)))
    users = [django_user_model.objects.create_user(f"u{i}", email=f"u{i}@x.org") for i in range(45)]
    campaign = Campaign.objects.create(name="c", message="hi", audience_ids=[u.pk for u in users])
    assert tasks.campaign_fill.call_local(campaign.pk) == 45
    assert [len(ids) for ids in rung] == [20, 20, 5]
    assert sorted(pk for ids in rung for pk in ids) == sorted(
        Notification.objects.filter(campaign=campaign).values_list("pk", flat=True)
    )
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.READY


@pytest.mark.django_db
def test_a_large_campaigns_doorbells_are_sized_for_all_of_it_not_per_chunk(
    settings, monkeypatch, django_user_model
):
    """Issue 19: the doorbells of a campaign created a chunk at a time number about its
    audience / NOTIFY_BATCH_SIZE. 60 recipients in chunks of 10, one thread, batches of up to
    10: each chunk is one doorbell of 10, not four of 3 (a chunk's four shares per thread)."""
    from notifications.models import Campaign

    settings.NOTIFY_CAMPAIGN_CHUNK, settings.NOTIFY_BATCH_SIZE = 10, 10
    settings.NOTIFY_DOORBELL_THREADS = 1
    messages: list = []
    monkeypatch.setattr(tasks, "_put_now", messages.extend)
    users = [django_user_model.objects.create_user(f"u{i}", email=f"u{i}@x.org") for i in range(60)]
    campaign = Campaign.objects.create(
        name="c", message="hi", audience_ids=[u.pk for u in users], audience_size=60
    )
    assert tasks.campaign_fill.call_local(campaign.pk) == 60
    assert len(messages) == 6


@pytest.mark.django_db
def test_the_sweeper_resumes_a_campaign_whose_creation_stopped(monkeypatch):
    from notifications.models import Campaign

    resumed: list = []
    monkeypatch.setattr(tasks, "campaign_fill", lambda pk: resumed.append(pk))
    monkeypatch.setattr(tasks, "pending_in_queue", lambda: 0)
    stopped = Campaign.objects.create(
        name="stopped", message="hi", updated_at=timezone.now() - timedelta(minutes=5)
    )
    Campaign.objects.create(name="busy", message="hi")  # its last chunk is recent
    assert tasks.sweep_now()["campaigns_resumed"] == 1
    assert resumed == [stopped.pk]


@pytest.mark.django_db
def test_idempotency_keys_are_kept_their_hours_then_pruned(settings):
    settings.NOTIFY_API_IDEMPOTENCY_HOURS = 24
    old, recent = ApiIdempotencyKey.objects.bulk_create(
        ApiIdempotencyKey(client="key:a", key=name, fingerprint="f") for name in ("old", "new")
    )
    ApiIdempotencyKey.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(hours=24, minutes=1)
    )
    ApiIdempotencyKey.objects.filter(pk=recent.pk).update(
        created_at=timezone.now() - timedelta(hours=23, minutes=59)
    )
    assert tasks.prune_idempotency_keys.call_local() == 1
    assert list(ApiIdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db
def test_a_consumer_warns_when_its_threads_could_exhaust_postgresql(settings, monkeypatch, caplog):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the connection budget is PostgreSQL's")
    monkeypatch.setattr(tasks, "_started", set())
    settings.NOTIFY_WORKERS, settings.NOTIFY_PACED_THREADS, settings.NOTIFY_CONSUMERS = 8, 8, 1
    settings.NOTIFY_WEBHOOK_THREADS = 4
    tasks.check_connection_budget()
    assert "max_connections" not in caplog.text  # 22 fit

    monkeypatch.setattr(tasks, "_started", set())
    settings.NOTIFY_WORKERS, settings.NOTIFY_PACED_THREADS, settings.NOTIFY_CONSUMERS = 64, 64, 4
    settings.NOTIFY_WEBHOOK_THREADS = 8  # each consumer's webhook lane holds as many too
    tasks.check_connection_budget()
    assert "may open 552 PostgreSQL connections" in caplog.text
    assert "8 webhook threads" in caplog.text
    assert "Lower NOTIFY_WORKERS" in caplog.text


def test_doorbells_rung_together_reach_the_real_queue_each_once_in_order():
    """Issue 19: a step's doorbells go to the queue together (one round trip on Redis); the
    consumer still finds each once, oldest first, behind a cancel's task ahead of them."""
    from huey.contrib.djhuey import HUEY

    HUEY.flush()
    try:
        tasks.ring(list(range(1, 301)), size=50)
        tasks.campaign_cancel_rest(3, 0)
        taken = []
        while (message := HUEY.dequeue()) is not None:
            taken.append((message.name, message.args))
        assert taken[0] == (tasks.campaign_cancel_rest.task_class.__name__, (3, 0))
        assert taken[1:] == [
            (tasks.deliver.task_class.__name__, (list(range(first, first + 50)),))
            for first in range(1, 301, 50)
        ]
    finally:
        HUEY.flush()
