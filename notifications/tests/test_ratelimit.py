"""The shared pacing schedule: slots spaced by the rate, busy chats refused, bounds kept.

Each test takes the slots it checks in quick succession and asserts on the schedule the
backend hands out (which slot, granted or not), not on how long anything took.
"""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings

from notifications import ratelimit
from notifications.ratelimit import DatabaseSchedule, RedisSchedule, acquire
from notifications.senders.base import DeliveryError


@pytest.fixture(params=["database", "redis"])
def schedule(request, transactional_db):
    if request.param == "database":
        return DatabaseSchedule()
    if not settings.QUEUE_URL.startswith("redis"):
        pytest.skip("the Redis schedule is used (and tested) when QUEUE_URL is redis://")
    return RedisSchedule(redis.Redis.from_url(settings.QUEUE_URL))


@pytest.fixture
def pace() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def test_slots_are_one_interval_apart(schedule, pace):
    waits = []
    for chat in range(5):
        reservation = schedule.reserve(pace, 0.5, str(chat), 1.0, max_wait=10)
        assert reservation.granted
        waits.append(reservation.wait)
    # Taken within a moment of each other: the fifth slot starts about 4 intervals later.
    assert waits == sorted(waits)
    assert 1.5 < waits[4] - waits[0] <= 2.0


def test_busy_chat_is_refused_without_taking_a_global_slot(schedule, pace):
    assert schedule.reserve(pace, 0.5, "chat-a", 1.0, max_wait=10).granted
    busy = schedule.reserve(pace, 0.5, "chat-a", 1.0, max_wait=10)
    assert not busy.granted
    assert 0.5 < busy.wait <= 1.0  # until chat-a's next slot
    other = schedule.reserve(pace, 0.5, "chat-b", 1.0, max_wait=10)
    assert other.granted
    assert other.wait <= 0.5  # the slot right after chat-a's, not one later


def test_no_slot_beyond_max_wait(schedule, pace):
    assert schedule.reserve(pace, 1.0, "1", 0.0, max_wait=1.5).granted
    assert schedule.reserve(pace, 1.0, "2", 0.0, max_wait=1.5).granted  # starts in ~1 s
    late = schedule.reserve(pace, 1.0, "3", 0.0, max_wait=1.5)  # would start in ~2 s
    assert not late.granted
    assert late.wait > 1.5


def test_acquire_raises_rate_limited_when_the_chat_stays_busy(schedule, pace, monkeypatch):
    monkeypatch.setattr(ratelimit, "schedule", lambda: schedule)
    acquire(pace, rate=100, key="chat", key_rate=0.1, max_wait=1)  # next in 10 s
    with pytest.raises(DeliveryError) as raised:
        acquire(pace, rate=100, key="chat", key_rate=0.1, max_wait=1)
    assert raised.value.rate_limited
    assert raised.value.retry_after > 1


def test_zero_rates_mean_no_pacing(monkeypatch):
    def no_schedule():
        raise AssertionError("the schedule must not be consulted")

    monkeypatch.setattr(ratelimit, "schedule", no_schedule)
    assert acquire("off", rate=0, key="chat", key_rate=0, max_wait=1) == 0.0
