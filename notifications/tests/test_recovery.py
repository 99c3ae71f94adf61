"""The sweeper: expired leases back to the queue (or failed in the last round, so a lease can
never loop), expired rows ended, lost doorbells rung again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from notifications import recovery, tasks
from notifications.models import DeliveryAttempt, Notification

pytestmark = pytest.mark.django_db

Status = Notification.Status


@pytest.fixture
def rung(monkeypatch) -> list[list[int]]:
    calls: list[list[int]] = []
    monkeypatch.setattr(tasks, "ring", lambda ids, eta=None, size=None: calls.append(sorted(ids)))
    HUEY.flush()
    return calls


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("a")


def sending(user, *, lease_in: float, rounds: int = 1) -> Notification:
    return Notification.objects.create(
        user=user,
        message="x",
        status=Status.SENDING,
        rounds=rounds,
        lease_expires_at=timezone.now() + timedelta(seconds=lease_in),
    )


def test_expired_leases_are_requeued_with_a_lease_attempt_and_live_ones_left(user, rung):
    dead, alive = sending(user, lease_in=-5), sending(user, lease_in=300)
    result = tasks.sweep_now()
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert (dead.status, dead.lease_expires_at) == (Status.QUEUED, None)
    assert alive.status == Status.SENDING
    assert result["lease_expired"] == 1
    assert rung == [[dead.pk]]
    lease = dead.attempts.get()
    assert (lease.transport, lease.outcome) == ("lease", DeliveryAttempt.Outcome.AMBIGUOUS)
    assert "the recipient got it twice" in lease.error


def test_a_lease_that_expired_in_the_last_round_ends_failed(settings, user, rung):
    """A worker that dies on every try (a crash the message itself causes) can't make the
    sweeper re-queue it forever: the round cap holds at sweep too."""
    settings.NOTIFY_MAX_ROUNDS = 3
    dead = sending(user, lease_in=-5, rounds=3)
    result = tasks.sweep_now()
    dead.refresh_from_db()
    assert dead.status == Status.FAILED
    assert "lease expired in the last round" in dead.last_error
    assert result["failed"] == 1 and rung == []
    assert dead.attempts.get().transport == "lease"


def test_waiting_rows_past_their_expiry_end_expired(user, rung):
    past = timezone.now() - timedelta(seconds=1)
    waiting = Notification.objects.create(
        user=user,
        message="x",
        status=Status.QUEUED,
        next_attempt_at=timezone.now() + timedelta(hours=1),  # waiting for a retry round
        expires_at=past,
    )
    recovery.sweep()
    waiting.refresh_from_db()
    assert waiting.status == Status.EXPIRED


def test_stale_due_rows_are_rung_again_when_the_queue_is_empty(user, rung):
    long_ago = timezone.now() - timedelta(minutes=10)
    stale = Notification.objects.create(
        user=user, message="x", status=Status.QUEUED, next_attempt_at=long_ago
    )
    later = Notification.objects.create(
        user=user,
        message="y",
        status=Status.SCHEDULED,
        next_attempt_at=timezone.now() + timedelta(minutes=10),
    )
    with override_settings(NOTIFY_SWEEP_STALE_SECONDS=60):
        tasks.sweep_now()
    assert stale.pk in rung[0] and later.pk not in rung[0]
