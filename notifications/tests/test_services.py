"""What operators and code do: create (with every bad input refused clearly), queue, resend,
cancel, edit; each bulk operation rings only the doorbells of the rows it changed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from huey.contrib.djhuey import HUEY
from huey.storage import RedisStorage

from notifications import services, tasks
from notifications.models import Campaign, Notification

pytestmark = pytest.mark.django_db

Status = Notification.Status


@pytest.fixture
def rung(monkeypatch) -> list[tuple[list[int], object]]:
    """Every doorbell rung: (ids, eta)."""
    calls: list[tuple[list[int], object]] = []
    monkeypatch.setattr(
        tasks, "ring", lambda ids, eta=None, size=None: calls.append((sorted(ids), eta))
    )
    return calls


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("ann", email="ann@example.com")


def test_a_new_notification_is_queued_and_rung_after_commit(
    user, rung, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        notification = services.notification_create(user=user, message="hi")
    assert notification.status == Status.QUEUED
    assert notification.queued_at is not None
    assert notification.expires_at is not None  # NOTIFY_MESSAGE_TTL after it is due
    assert rung == [([notification.pk], None)]


def test_send_on_create_can_be_turned_off(settings, user, rung, django_capture_on_commit_callbacks):
    settings.NOTIFY_SEND_ON_CREATE = False
    with django_capture_on_commit_callbacks(execute=True):
        assert services.notification_create(user=user, message="hi").status == Status.PENDING
    assert rung == []


def test_a_future_send_at_schedules_it_and_rings_at_that_time(
    user, rung, django_capture_on_commit_callbacks
):
    send_at = timezone.now() + timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        n = services.notification_create(user=user, message="later", send_at=send_at)
    assert n.status == Status.SCHEDULED and n.next_attempt_at == send_at
    assert rung == [([n.pk], send_at)]


@pytest.mark.django_db(transaction=True)
def test_a_queue_down_when_one_is_created_loses_nothing_and_raises_nothing(
    user, monkeypatch, caplog
):
    """The row is committed as queued before its doorbell: a queue still down after ringing's
    tries is logged, the caller gets its notification, and the sweeper rings it later."""
    HUEY.flush()
    with monkeypatch.context() as down:
        down.setattr(tasks, "RING_RETRY_SECONDS", 0.5)
        # A queue nobody answers: nothing listens on port 1.
        down.setattr(HUEY, "storage", RedisStorage(url="redis://127.0.0.1:1/0"))
        notification = services.notification_create(user=user, message="hi")
    assert notification.status == Status.QUEUED
    assert "saved as queued but not rung" in caplog.text
    assert HUEY.pending_count() == 0

    with override_settings(NOTIFY_SWEEP_STALE_SECONDS=0):
        assert tasks.sweep_now()["rung"] == 1
    assert HUEY.pending_count() == 1
    HUEY.flush()


@pytest.mark.django_db(transaction=True)
def test_a_queue_down_when_a_campaign_starts_loses_nothing_and_raises_nothing(
    user, monkeypatch, caplog
):
    """A campaign for everyone the filter matches is created by the consumer: with the queue
    down it is saved, the operator gets the campaign page, and the sweeper starts it."""
    HUEY.flush()
    with monkeypatch.context() as down:
        down.setattr(tasks, "RING_RETRY_SECONDS", 0.5)
        down.setattr(HUEY, "storage", RedisStorage(url="redis://127.0.0.1:1/0"))
        campaign = services.campaign_create(created_by=user, audience_query="", message="hi")
    assert campaign.state == Campaign.State.CREATING
    assert f"campaign {campaign.pk} saved but its creation not started" in caplog.text
    assert HUEY.pending_count() == 0

    with override_settings(NOTIFY_SWEEP_STALE_SECONDS=0):
        assert tasks.sweep_now()["campaigns_resumed"] == 1
    assert HUEY.pending_count() == 1  # its creation, queued
    HUEY.flush()


@pytest.mark.parametrize(
    ("fields", "field", "text"),
    [
        ({"message": ""}, "message", "The message is empty"),
        ({"message": "  \n "}, "message", "The message is empty"),
        ({"message": "a\x00b"}, "message", "NUL character"),
        ({"message": "x" * 10_001}, "message", "10,001 characters long; at most 10,000"),
        ({"subject": "Hi\r\nBcc: x@example.com"}, "subject", "must be one line"),
        ({"subject": "s" * 201}, "subject", "at most 200 characters"),
        ({"idempotency_key": "k" * 201}, "idempotency_key", "at most 200 are allowed"),
        ({"channels": ["telegram", "fax"]}, "channels", "Unknown channel 'fax'"),
        ({"channels": ["email", "email"]}, "channels", "at most once"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_stored(user, fields, field, text):
    values = {"message": "hello", **fields}
    with pytest.raises(ValidationError) as caught:
        services.notification_create(user=user, **values)
    assert field in caught.value.message_dict
    assert any(text in message for message in caught.value.message_dict[field])
    assert Notification.objects.count() == 0


def test_an_expiry_before_the_send_time_is_refused(user):
    now = timezone.now()
    with pytest.raises(ValidationError, match="after the time the notification is sent"):
        services.notification_create(
            user=user, message="x", send_at=now + timedelta(hours=2), expires_at=now
        )


def test_the_database_refuses_an_empty_message_even_without_validation(user):
    with pytest.raises(IntegrityError):
        Notification.objects.create(user=user, message="")


def test_an_idempotency_key_returns_the_first_notification(user):
    first = services.notification_create(user=user, message="order 17", idempotency_key="o-17")
    second = services.notification_create(user=user, message="order 17", idempotency_key="o-17")
    assert first.pk == second.pk
    assert Notification.objects.count() == 1


def _pending(user, n: int, **fields) -> list[Notification]:
    return Notification.objects.bulk_create(
        [Notification(user=user, message=f"m{i}", **fields) for i in range(n)]
    )


def test_send_rings_only_the_rows_it_queued(user, rung, django_capture_on_commit_callbacks):
    """A click on 3 rows rings 3 doorbells, not one for every due row in the table."""
    already_due = _pending(user, 5, status=Status.QUEUED, next_attempt_at=timezone.now())
    chosen = _pending(user, 3)
    sent = _pending(user, 2, status=Status.SENT)
    selection = Notification.objects.filter(pk__in=[n.pk for n in chosen + sent])
    with django_capture_on_commit_callbacks(execute=True):
        result = services.notifications_queue(queryset=selection)
    assert result.describe("queued") == "3 queued, 2 skipped: 2 already sent"
    assert [ids for ids, _ in rung] == [sorted(n.pk for n in chosen)]
    assert not set(rung[0][0]) & {n.pk for n in already_due}


def test_a_click_reads_only_the_rows_it_selected_not_those_waiting_beside_them(
    user, rung, django_capture_on_commit_callbacks
):
    """Issue 19: a click on a few rows beside a million waiting ones must not read the
    million. Every statement of the click on the notifications' table is bounded by the
    selection's ids (the rows changed were read back by their stamp alone, which no index
    holds: ~50 ms for ten rows beside a million queued)."""
    _pending(user, 20, status=Status.QUEUED, next_attempt_at=timezone.now())
    chosen = _pending(user, 3)
    ids = sorted(n.pk for n in chosen)
    table = connection.ops.quote_name(Notification._meta.db_table)
    with CaptureQueriesContext(connection) as queries:
        with django_capture_on_commit_callbacks(execute=True):
            result = services.notifications_queue(queryset=Notification.objects.filter(pk__in=ids))
    assert result.changed == 3 and [i for i, _ in rung] == [ids]
    on_table = [q["sql"] for q in queries.captured_queries if table in q["sql"]]
    assert len(on_table) >= 3  # the counts, the ids read, the change and what it rings
    for sql in on_table:
        where = sql.split(" WHERE ", 1)[1]
        assert '."id" IN (' in where and all(str(pk) in where for pk in ids), sql


def test_a_click_over_more_rows_than_a_statement_takes_changes_and_rings_them_all(
    user, rung, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(services, "BULK_CHUNK", 4)
    chosen = _pending(user, 10)
    sent = _pending(user, 1, status=Status.SENT)
    selection = Notification.objects.filter(user=user)  # a filter, not a list of ids
    with django_capture_on_commit_callbacks(execute=True):
        result = services.notifications_queue(queryset=selection)
    assert result.describe("queued") == "10 queued, 1 skipped: 1 already sent"
    assert sorted(i for ids, _ in rung for i in ids) == sorted(n.pk for n in chosen)
    assert Notification.objects.get(pk=sent[0].pk).status == Status.SENT


def test_a_row_changed_between_the_clicks_read_and_its_change_is_left_and_not_rung(
    user, rung, django_capture_on_commit_callbacks
):
    """One of three rows is sent by a consumer after the click read it and before it changed
    it: the click changes and rings the other two, and says so."""
    chosen = _pending(user, 3)
    table = connection.ops.quote_name(Notification._meta.db_table)
    raced = []

    def consumer_sends_one_first(execute, sql, params, many, context):
        if sql.startswith(f"UPDATE {table}") and not raced:
            raced.append(chosen[1].pk)
            execute(
                f"UPDATE {table} SET status = 'sent' WHERE id = %s", [chosen[1].pk], False, context
            )
        return execute(sql, params, many, context)

    selection = Notification.objects.filter(pk__in=[n.pk for n in chosen])
    with django_capture_on_commit_callbacks(execute=True):
        with connection.execute_wrapper(consumer_sends_one_first):
            result = services.notifications_queue(queryset=selection)
    assert raced and result.changed == 2
    assert [ids for ids, _ in rung] == [sorted([chosen[0].pk, chosen[2].pk])]
    assert Notification.objects.get(pk=chosen[1].pk).status == Status.SENT


def test_send_starts_a_new_run(user, rung):
    failed = _pending(
        user,
        1,
        status=Status.FAILED,
        rounds=3,
        last_error="gave up",
        progress={"blocked": {"telegram": "permanent"}},
    )[0]
    services.notifications_queue(queryset=Notification.objects.filter(pk=failed.pk))
    failed.refresh_from_db()
    assert (failed.status, failed.rounds, failed.last_error, failed.progress) == (
        Status.QUEUED,
        0,
        "",
        {},
    )


def test_resend_of_an_expired_one_gives_it_a_new_lifetime(user, rung):
    old = timezone.now() - timedelta(days=2)
    expired = _pending(user, 1, status=Status.EXPIRED, expires_at=old)[0]
    services.notifications_resend(queryset=Notification.objects.filter(pk=expired.pk))
    expired.refresh_from_db()
    assert expired.status == Status.QUEUED and expired.expires_at > timezone.now()


def test_send_keeps_a_future_send_at(user, rung, django_capture_on_commit_callbacks):
    send_at = timezone.now() + timedelta(hours=1)
    n = _pending(user, 1, send_at=send_at)[0]
    with django_capture_on_commit_callbacks(execute=True):
        services.notifications_queue(queryset=Notification.objects.filter(pk=n.pk))
    n.refresh_from_db()
    assert n.status == Status.SCHEDULED
    assert rung == [([n.pk], send_at)]


def test_cancel_stops_waiting_ones_and_those_being_sent_but_not_done_ones(user):
    waiting = _pending(user, 1, status=Status.SCHEDULED) + _pending(user, 1, status=Status.QUEUED)
    busy = _pending(user, 1, status=Status.SENDING)
    done = _pending(user, 1, status=Status.SENT)
    result = services.notifications_cancel(
        queryset=Notification.objects.filter(pk__in=[n.pk for n in waiting + busy + done])
    )
    assert result.describe("cancelled") == "3 cancelled, 1 skipped: 1 already sent"
    assert Notification.objects.get(pk=done[0].pk).status == Status.SENT


def test_editing_saves_only_the_edited_fields_and_only_while_pending(user):
    """A worker wrote "sent" meanwhile: the admin's stale copy must not overwrite it."""
    n = _pending(user, 1)[0]
    stale_copy = Notification.objects.get(pk=n.pk)
    Notification.objects.filter(pk=n.pk).update(status=Status.SENT, channel="telegram")
    stale_copy.message = "edited"
    assert (
        services.notification_update_pending(notification=stale_copy, fields=["message"]) is False
    )
    n.refresh_from_db()
    assert (n.status, n.channel, n.message) == (Status.SENT, "telegram", "m0")

    other = _pending(user, 1)[0]
    Notification.objects.filter(pk=other.pk).update(campaign_message=True)
    other.message = "edited"
    assert services.notification_update_pending(notification=other, fields=["message"]) is True
    other.refresh_from_db()
    assert other.message == "edited" and other.status == Status.PENDING
    # Its own message now, not a campaign's: the search finds it by this one.
    assert other.campaign_message is False
