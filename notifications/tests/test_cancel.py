"""Cancel stops sends: a notification cancelled while it waits for its pacing slot, or behind
a slow channel, is not sent; a call already in flight finishes and ends as what happened; a
campaign's "Cancel the rest" stops its paced lane with the real consumer (issue 15: 429 were
sent after the click, the last 16 s later).

In process with ``delivery.claim``/``advance`` against the fakes, and end to end."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications import delivery, services
from notifications.models import Campaign, DeliveryAttempt, Notification, UserContact
from notifications.senders.email import EmailSender
from notifications.senders.telegram import TelegramSender
from notifications.tests.fixtures import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome
User = get_user_model()


@pytest.fixture
def chain(settings, telegram, smtp):
    settings.TELEGRAM_BOT_TOKEN = telegram.token
    settings.TELEGRAM_API_URL = telegram.url
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.DEFAULT_FROM_EMAIL = "service@example.com"
    settings.NOTIFY_HTTP_TIMEOUT = 1.0
    return settings


def cancel(notification: Notification) -> services.BulkResult:
    return services.notifications_cancel(queryset=Notification.objects.filter(pk=notification.pk))


def test_a_notification_cancelled_while_it_waits_for_its_pacing_slot_is_not_sent(
    chain, telegram, make_user
):
    chain.NOTIFY_TELEGRAM_RATE = 2.0  # a slot every half second: the second one waits
    first = services.notification_create(user=make_user(telegram_chat_id="101"), message="one")
    second = services.notification_create(user=make_user(telegram_chat_id="102"), message="two")
    jobs = delivery.claim([first.pk, second.pk])
    assert isinstance(delivery.advance(jobs[0]), delivery.Decision)
    waiting = delivery.advance(jobs[1])
    assert isinstance(waiting, delivery.Wait)  # in the lane, row `sending`

    assert cancel(second).changed == 1
    time.sleep(max(waiting.at - time.time(), 0))
    decision = delivery.advance(waiting.job)  # its slot came

    assert decision.status is None  # the row is no longer this round's
    assert telegram.delivered_to("102") == []
    assert telegram.delivered_to("101") == ["one"]
    second.refresh_from_db()
    assert second.status == Status.CANCELLED
    assert second.sent_at is None


def test_a_batch_read_at_once_sends_none_of_its_rows_cancelled_meanwhile(
    chain, telegram, make_user
):
    """A worker sends its batch one after another; rows not seen ours for half a second are
    read in one query for the batch (``confirm_ours``), not one each before its provider
    call. A row cancelled while its batch was being sent is not sent: the batch's read does
    not take it for ours, and its own check before the call finds it cancelled."""
    rows = [
        services.notification_create(user=make_user(telegram_chat_id=f"20{n}"), message=f"m{n}")
        for n in range(4)
    ]
    jobs = delivery.claim([n.pk for n in rows])
    assert len(jobs) == 4
    for job in jobs:
        job.seen_ours -= delivery.CANCEL_CHECK_SECONDS + 1  # claimed a while ago
    assert cancel(rows[2]).changed == 1

    with CaptureQueriesContext(connection) as reads:
        delivery.confirm_ours(jobs)
    assert len(reads) == 1  # the whole batch at once
    for job in jobs:
        delivery.advance(job)

    assert [telegram.delivered_to(f"20{n}") for n in range(4)] == [["m0"], ["m1"], [], ["m3"]]
    statuses = dict(Notification.objects.values_list("pk", "status"))
    assert [statuses[n.pk] for n in rows] == [
        Status.SENT,
        Status.SENT,
        Status.CANCELLED,
        Status.SENT,
    ]
    assert jobs[2].lost


def test_a_chain_stops_at_its_next_provider_call_after_a_cancel(
    chain, telegram, smtp, make_user, monkeypatch
):
    """Telegram fails slowly; the operator cancels meanwhile: email is not tried."""
    monkeypatch.setattr(delivery, "CANCEL_CHECK_SECONDS", 0.0)
    user = make_user(email="slow@example.com", telegram_chat_id="103")
    notification = services.notification_create(user=user, message="stop me")
    original = TelegramSender.send_part

    def cancelled_during(self, prepared, index):
        cancel(notification)  # the operator's click, while Telegram is being called
        return original(self, prepared, index)

    telegram.per_chat["103"] = "500"
    monkeypatch.setattr(TelegramSender, "send_part", cancelled_during)
    delivery.deliver_now([notification.pk])

    notification.refresh_from_db()
    assert notification.status == Status.CANCELLED
    assert smtp.received == []
    # What happened is recorded: the Telegram call that was in flight.
    assert list(notification.attempts.values_list("channel", "outcome")) == [
        ("telegram", Outcome.TRANSIENT)
    ]


def test_a_send_in_flight_when_cancelled_ends_sent_as_it_was(
    chain, telegram, smtp, make_user, monkeypatch
):
    user = make_user(email="late@example.com")
    notification = services.notification_create(user=user, message="already on its way")
    original = EmailSender.send_part

    def cancelled_during(self, prepared, index):
        result = original(self, prepared, index)  # the provider took it
        cancel(notification)  # and the click lands before the round is recorded
        return result

    monkeypatch.setattr(EmailSender, "send_part", cancelled_during)
    delivery.deliver_now([notification.pk])

    notification.refresh_from_db()
    assert len(smtp.received) == 1
    assert (notification.status, notification.channel) == (Status.SENT, "email")
    assert notification.sent_at is not None
    assert notification.attempts.filter(outcome=Outcome.SUCCESS).count() == 1


def test_a_split_message_cancelled_between_its_parts_records_the_parts_sent(
    chain, telegram, make_user, monkeypatch
):
    monkeypatch.setattr(delivery, "CANCEL_CHECK_SECONDS", 0.0)
    user = make_user(telegram_chat_id="104")
    notification = services.notification_create(user=user, message="word " * 2000)  # 3 parts
    original = TelegramSender.send_part

    def cancelled_after_first(self, prepared, index):
        result = original(self, prepared, index)
        if index == 0:
            cancel(notification)
        return result

    monkeypatch.setattr(TelegramSender, "send_part", cancelled_after_first)
    delivery.deliver_now([notification.pk])

    notification.refresh_from_db()
    assert notification.status == Status.CANCELLED
    assert len(telegram.delivered_to("104")) == 1
    partial = notification.attempts.get()
    assert (partial.channel, partial.outcome) == ("telegram", Outcome.PARTIAL)
    assert partial.error.startswith("1 of 3 parts accepted; the rest not sent")
    assert partial.provider_message_id  # the part that went out, for the record


@pytest.mark.e2e
@pytest.mark.parametrize("chunk", ["10000", "20"])
def test_cancel_the_rest_stops_a_paced_campaign_within_its_in_flight_sends(
    start_consumer, telegram, make_user, settings, monkeypatch, chunk
):
    """300 Telegram recipients at 20/s (15 s of sends). After the cancel, only the sends
    already under way may finish: at most one per worker and paced thread. The consumer's
    task cancels the rest (more than REQUEST_CHUNK) in one chunk or in chunks of 20 (its task
    goes ahead of the campaign's doorbells; those that ring meanwhile claim nothing)."""
    from notifications import cancelling

    settings.NOTIFY_CANCEL_CHUNK = int(chunk)
    monkeypatch.setattr(cancelling, "REQUEST_CHUNK", 20)
    users = User.objects.bulk_create(User(username=f"tg{i}") for i in range(300))
    UserContact.objects.bulk_create(
        UserContact(user=u, telegram_chat_id=str(5000 + i)) for i, u in enumerate(users)
    )
    admin = User.objects.create_superuser("boss", password="x")
    workers, paced = 4, 4
    start_consumer(
        workers=workers,
        NOTIFY_TELEGRAM_RATE="20",
        NOTIFY_PACED_THREADS=str(paced),
        EMAIL_HOST="",
        NOTIFY_CANCEL_CHUNK=chunk,
    )
    campaign = services.campaign_create(
        created_by=admin, user_ids=[u.pk for u in users], message="Sale starts now"
    )
    wait_for(lambda: len(telegram.messages) >= 40, 60, "40 sends before the click")

    result = services.campaign_cancel(campaign=Campaign.objects.get(pk=campaign.pk))
    at_click = len(telegram.messages)

    def settled() -> bool:
        return not Notification.objects.filter(
            campaign=campaign, status__in=(Status.QUEUED, Status.SCHEDULED, Status.SENDING)
        ).exists()

    wait_for(settled, 60, "every notification of the campaign final")
    time.sleep(1.5)  # a send that would still leak out has time to show at the fake
    after = len(telegram.messages) - at_click
    assert result.changed > 200
    assert after <= workers + paced, f"{after} sent after the click"
    statuses = Notification.objects.filter(campaign=campaign)
    # What the fake received is what the rows say: those in flight ended sent, not cancelled.
    assert statuses.filter(status=Status.SENT).count() == len(telegram.messages)
    assert statuses.filter(status=Status.CANCELLED).count() == 300 - len(telegram.messages)


def queued_campaign(count: int, prefix: str = "c") -> tuple[Campaign, list[int]]:
    users = User.objects.bulk_create(User(username=f"{prefix}{i}") for i in range(count))
    campaign = Campaign.objects.create(name="big", message="Sale", state=Campaign.State.READY)
    made = Notification.objects.bulk_create(
        Notification(user=u, message="Sale", campaign=campaign, status=Status.QUEUED) for u in users
    )
    return campaign, sorted(n.pk for n in made)


def test_cancel_the_rest_marks_the_campaign_and_the_consumer_cancels_oldest_first(
    settings, monkeypatch
):
    """Issue 19: a large campaign's cancel answers at once. The request marks the campaign
    and cancels those being sent (the rest are more than REQUEST_CHUNK, here 2); the
    consumer's task, queued ahead of the doorbells, cancels the rest oldest first, a chunk at
    a time (here 5), from the first not sent. The operator's count is of all not sent,
    though counted after the mark."""
    from notifications import cancelling, tasks

    settings.NOTIFY_CANCEL_CHUNK = 5
    monkeypatch.setattr(cancelling, "REQUEST_CHUNK", 2)
    queued: list[tuple] = []
    monkeypatch.setattr(tasks, "campaign_cancel_rest", lambda *args: queued.append(args))
    campaign, ids = queued_campaign(30)
    # The oldest 7 went already, the last was cancelled on its own before, one is in flight.
    Notification.objects.filter(pk__in=ids[:7]).update(status=Status.SENT)
    Notification.objects.filter(pk=ids[-1]).update(status=Status.CANCELLED)
    Notification.objects.filter(pk=ids[9]).update(status=Status.SENDING)

    result = services.campaign_cancel(campaign=campaign)
    assert result.changed == 22
    assert result.left_alone == {Status.SENT: 7, Status.CANCELLED: 1}
    cancelled = Notification.objects.filter(campaign=campaign, status=Status.CANCELLED)
    assert sorted(cancelled.values_list("pk", flat=True)) == [ids[9], ids[-1]]
    campaign.refresh_from_db()
    assert campaign.cancel_cursor == ids[7] - 1
    assert queued == [(campaign.pk, ids[7] - 1)]

    monkeypatch.undo()
    settings.NOTIFY_CANCEL_CHUNK = 5
    assert tasks.campaign_cancel_rest.call_local(*queued[0]) == ids[-1]
    assert cancelled.count() == 23
    assert Notification.objects.filter(campaign=campaign, status=Status.SENT).count() == 7
    campaign.refresh_from_db()
    assert campaign.cancel_cursor is None


def test_no_consumer_claims_a_notification_of_a_campaign_being_cancelled(settings, monkeypatch):
    """Issue 19, "Cancel the rest stops sends within 2 s": the cancel's first step marks the
    campaign, then cancels what is being sent; from then on a
    doorbell for rows its chunks have not reached yet claims none of them (the consumers ran
    ahead of the chunks and sent a batch each, every few seconds, for minutes): they wait,
    queued, for the chunks. Another campaign's rows are claimed as ever."""
    from notifications import cancelling, claiming, tasks

    settings.NOTIFY_CANCEL_CHUNK = 5
    monkeypatch.setattr(cancelling, "REQUEST_CHUNK", 5)
    queued: list[tuple] = []
    monkeypatch.setattr(tasks, "campaign_cancel_rest", lambda *args: queued.append(args))
    campaign, ids = queued_campaign(30)
    _, others = queued_campaign(3, prefix="other")
    Notification.objects.filter(pk=ids[20]).update(status=Status.SENDING)  # in flight

    services.campaign_cancel(campaign=campaign)
    assert Notification.objects.get(pk=ids[20]).status == Status.CANCELLED
    assert claiming.claim(ids[12:20]) == []
    assert set(Notification.objects.filter(pk__in=ids[12:20]).values_list("status", flat=True)) == {
        Status.QUEUED
    }
    assert [job.notification.pk for job in claiming.claim(others)] == others

    monkeypatch.undo()
    settings.NOTIFY_CANCEL_CHUNK = 5
    # A claim under way as the mark committed, committed after the request looked: the
    # consumer cancels it before its first chunk, not when the chunks reach it.
    Notification.objects.filter(pk=ids[25]).update(status=Status.SENDING)
    seen: list[str] = []
    chunk = cancelling.campaign_chunk

    def looked(*args, **kwargs):
        seen.append(Notification.objects.get(pk=ids[25]).status)
        return chunk(*args, **kwargs)

    monkeypatch.setattr(cancelling, "campaign_chunk", looked)
    tasks.campaign_cancel_rest.call_local(*queued[0])
    assert seen[0] == Status.CANCELLED
    assert set(Notification.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        Status.CANCELLED
    }
    campaign.refresh_from_db()
    assert campaign.cancel_cursor is None


def test_the_sweeper_finishes_a_cancel_whose_consumer_died_midway(settings, monkeypatch):
    """A cancel left with its cursor (its consumer killed) and no chunk for the stale time
    is taken up by the sweeper from the cursor on; a fresh one is left to its consumer."""
    from datetime import timedelta

    from django.utils import timezone

    from notifications import tasks

    settings.NOTIFY_CANCEL_CHUNK = 4
    campaign, ids = queued_campaign(10)
    Notification.objects.filter(pk__in=ids[:4]).update(status=Status.CANCELLED)
    Campaign.objects.filter(pk=campaign.pk).update(cancel_cursor=ids[3])
    monkeypatch.setattr(tasks, "pending_in_queue", lambda: 1)  # a busy queue: no matter
    tasks.sweep_now()
    waiting = Notification.objects.filter(campaign=campaign, status=Status.QUEUED)
    assert waiting.count() == 6  # its consumer may still be at it

    stale = timezone.now() - timedelta(seconds=settings.NOTIFY_SWEEP_STALE_SECONDS + 1)
    Campaign.objects.filter(pk=campaign.pk).update(updated_at=stale)
    resumed: list[tuple] = []
    monkeypatch.setattr(tasks, "campaign_cancel_rest", lambda *args: resumed.append(args))
    tasks.sweep_now()
    assert resumed == [(campaign.pk, ids[3])]
    monkeypatch.undo()
    tasks.campaign_cancel_rest.call_local(*resumed[0])
    assert waiting.count() == 0
    campaign.refresh_from_db()
    assert campaign.cancel_cursor is None


def test_a_cancels_rest_goes_ahead_of_the_doorbells_already_in_the_queue():
    """The consumer takes the cancel's task before the campaign's doorbells rung earlier
    (huey's priority, in this tier's real queue): they would send what it cancels."""
    from huey.contrib.djhuey import HUEY

    from notifications import tasks

    HUEY.flush()
    try:
        tasks.ring(list(range(1, 201)), size=50)  # four doorbells
        tasks.campaign_cancel_rest(7, 0)
        assert HUEY.pending_count() == 5
        first = HUEY.dequeue()
        assert first.name == tasks.campaign_cancel_rest.task_class.__name__
        assert first.args == (7, 0)
    finally:
        HUEY.flush()


def test_a_claim_gives_its_jobs_in_the_doorbells_order_whatever_the_plan():
    """A worker sends a batch in the order its doorbell gives the ids (oldest due first), not
    in the order the database's plan happened to return the claimed rows (an index scan's,
    or a partial index's: CI once saw a batch come back out of order)."""
    from notifications import claiming

    _, ids = queued_campaign(6, prefix="order")
    given = [ids[3], ids[0], ids[5], ids[1], ids[4], ids[2]]
    assert [job.notification.pk for job in claiming.claim(given)] == given
