"""The seed's promise (issue #2, the original specification's ``signals.py``): a notification
code saves new through the ORM, the plain Django way, is queued when its transaction commits,
and sent — once. Lost once in a refactor because no test named it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from notifications.models import Notification
from notifications.services import notification_create
from notifications.tests.fixtures import wait_for_status

Status = Notification.Status


@pytest.fixture
def empty_queue():
    HUEY.flush()
    yield
    HUEY.flush()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_notification_created_through_the_orm_is_sent_once(
    start_consumer, telegram, smtp, make_user
):
    start_consumer()
    user = make_user(email="orm@example.com")

    notification = Notification.objects.create(user=user, message="Saved the Django way")

    wait_for_status(notification, Status.SENT)
    assert notification.channel == "email"
    assert [m.rcpt_tos for m in smtp.received] == [["orm@example.com"]]
    assert notification.attempts.filter(outcome="success").count() == 1
    # Saved again (an edit, a touch): nothing more is sent.
    notification.save()
    Notification.objects.get(pk=notification.pk).save()
    notification_create(user=user, message="a later one, to know the consumer went on")
    wait_for_status(Notification.objects.latest("pk"), Status.SENT)
    notification.refresh_from_db()
    assert notification.status == Status.SENT
    assert notification.attempts.filter(outcome="success").count() == 1
    assert [m.rcpt_tos for m in smtp.received] == [["orm@example.com"]] * 2


@pytest.mark.django_db(transaction=True)
def test_an_orm_created_notification_is_queued_only_when_its_transaction_commits(
    make_user, empty_queue
):
    user = make_user(email="t@example.com")
    with transaction.atomic():
        notification = Notification.objects.create(user=user, message="after commit")
        assert HUEY.pending_count() == 0  # nothing rung before the commit
    notification.refresh_from_db()
    assert notification.status == Status.QUEUED
    assert notification.queued_at is not None
    assert notification.expires_at is not None  # the default lifetime, as the services give
    assert HUEY.pending_count() == 1

    with pytest.raises(RuntimeError), transaction.atomic():
        Notification.objects.create(user=user, message="rolled back")
        raise RuntimeError
    assert not Notification.objects.filter(message="rolled back").exists()
    assert HUEY.pending_count() == 1


@pytest.mark.django_db(transaction=True)
def test_saving_an_orm_created_notification_again_rings_nothing_more(make_user, empty_queue):
    user = make_user(email="t@example.com")
    notification = Notification.objects.create(user=user, message="once")
    notification.message = "edited"
    notification.save()
    Notification.objects.get(pk=notification.pk).save()
    assert HUEY.pending_count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_services_path_rings_once_not_twice(make_user, empty_queue):
    user = make_user(email="t@example.com")
    notification_create(user=user, message="by the service")
    assert HUEY.pending_count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_orm_created_notification_with_a_future_send_at_is_scheduled(make_user, empty_queue):
    user = make_user(email="t@example.com")
    at = timezone.now() + timedelta(hours=1)
    notification = Notification.objects.create(user=user, message="later", send_at=at)
    notification.refresh_from_db()
    assert notification.status == Status.SCHEDULED
    assert notification.next_attempt_at == at
    # One doorbell, for its time, not for now.
    assert [task.eta is not None for task in HUEY.pending()] == [True]


@pytest.mark.django_db(transaction=True)
def test_orm_created_notifications_stay_pending_when_send_on_create_is_off(
    make_user, settings, empty_queue
):
    settings.NOTIFY_SEND_ON_CREATE = False
    user = make_user(email="t@example.com")
    notification = Notification.objects.create(user=user, message="wait for Send")
    notification.refresh_from_db()
    assert notification.status == Status.PENDING
    assert HUEY.pending_count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_pending_notification_made_by_the_service_on_purpose_stays_pending(
    make_user, empty_queue
):
    user = make_user(email="t@example.com")
    notification = notification_create(user=user, message="not yet", queue=False)
    notification.refresh_from_db()
    assert notification.status == Status.PENDING
    assert HUEY.pending_count() == 0
