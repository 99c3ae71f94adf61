"""The shared pacing schedule: slots spaced by the rate, nothing booked past the horizon, the
clock read after the lock. Tests assert which slots the schedule hands out, not how long
anything took."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import pytest
import redis
from django.conf import settings
from django.db import connection, connections, transaction

from notifications import pacing
from notifications.models import RateLimitSlot
from notifications.pacing import DatabaseSchedule, RedisSchedule
from notifications.senders.base import DeliveryError, Pace


def redis_connection(url: str) -> redis.Connection:
    return redis.Redis.from_url(url).connection_pool.make_connection()


@pytest.fixture(params=["database", "redis"])
def schedule(request, transactional_db):
    if request.param == "database":
        return DatabaseSchedule()
    if not settings.QUEUE_URL.startswith("redis"):
        pytest.skip("the Redis schedule is used (and tested) when QUEUE_URL is redis://")
    return RedisSchedule(lambda: redis_connection(settings.QUEUE_URL))


@pytest.fixture
def name() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def book(schedule, name: str, interval: float, horizon: float = 10):
    return schedule.book_all([name], [interval], horizon, tolerance=0.002)


def test_slots_are_one_interval_apart(schedule, name):
    slots = []
    for _ in range(5):
        booking = book(schedule, name, 0.5)
        assert booking.held == 1 and not booking.refused
        slots.append(booking.at)
    # Booked within a moment of each other: each slot starts one interval after the last.
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert all(gap == pytest.approx(0.5, abs=0.05) for gap in gaps)


def test_nothing_is_booked_past_the_horizon(schedule, name):
    first = book(schedule, name, 1.0, horizon=1.5)
    second = book(schedule, name, 1.0, horizon=1.5)  # starts in ~1 s
    late = book(schedule, name, 1.0, horizon=1.5)  # would start in ~2 s
    assert not first.refused and not second.refused and late.refused and late.held == 0
    assert late.at == pytest.approx(second.at + 1.0, abs=0.05)  # when to ask again
    # The refusal booked nothing: asking again with room gets exactly that slot.
    assert book(schedule, name, 1.0, horizon=5).at == pytest.approx(late.at, abs=0.05)


def test_a_push_back_moves_the_next_slot_and_pauses_the_pace_never_earlier(schedule, name):
    """Issue 19: a provider's retry_after moves the whole pace: the next slot anyone books is
    after it, the pace reads as paused until then, and a shorter push never shortens it."""
    assert schedule.paused_until([name]) == 0.0
    before = time.time()
    until = schedule.push_back(name, 3.0)
    assert until == pytest.approx(before + 3.0, abs=0.5)
    assert schedule.paused_until([name, "another-pace"]) == pytest.approx(until, abs=0.01)
    assert book(schedule, name, 0.1).at == pytest.approx(until, abs=0.01)
    assert book(schedule, name, 0.1).at == pytest.approx(until + 0.1, abs=0.01)
    # The slots booked stay booked: a shorter push leaves the next one where it was.
    assert schedule.push_back(name, 1.0) == pytest.approx(until + 0.2, abs=0.01)
    assert schedule.paused_until([name]) == pytest.approx(until, abs=0.01)
    # Another pace is untouched.
    assert book(schedule, f"{name}-other", 0.1).at < until - 1.0


def test_a_chat_and_the_bot_are_booked_together_when_the_chat_is_free(schedule, name):
    """One round trip books both: the chat's slot (now) and then the bot's."""
    chat, bot = f"{name}:chat:a", name
    both = schedule.book_all([chat, bot], [1.0, 0.04], 10, tolerance=0.002)
    assert both.held == 2 and not both.refused
    # The chat is now busy for a second: only its slot is booked (the bot's is not taken),
    # and the caller waits for it before booking the bot.
    busy = schedule.book_all([chat, bot], [1.0, 0.04], 10, tolerance=0.002)
    assert busy.held == 1 and busy.at - time.time() > 0.5
    other = schedule.book_all([f"{name}:chat:b", bot], [1.0, 0.04], 10, tolerance=0.002)
    assert other.held == 2 and other.at - time.time() < 0.1  # the bot's slot was not wasted


def test_zero_rate_means_no_pacing(monkeypatch):
    def no_schedule():
        raise AssertionError("the schedule must not be consulted")

    monkeypatch.setattr(pacing, "schedule", no_schedule)
    assert pacing.book_all([Pace("off", 0)], horizon=1, tolerance=0).held == 1


def test_an_unreachable_schedule_is_rate_limited_not_a_blind_send(monkeypatch):
    class Down:
        def book_all(self, *args):
            raise redis.exceptions.ConnectionError("Redis is down")

    monkeypatch.setattr(pacing, "schedule", lambda: Down())
    with pytest.raises(DeliveryError) as caught:
        pacing.book_all([Pace("telegram", 25)], horizon=1, tolerance=0)
    assert caught.value.rate_limited


def test_the_database_schedule_reads_the_clock_after_taking_its_lock(transactional_db, name):
    """Another transaction holds the pace's row for a while. The booking that waited for
    it must compute its slot from the time it got the lock, not from when it started."""
    schedule = DatabaseSchedule()
    book(schedule, name, 0.01)  # the row exists, its next slot long past by now
    time.sleep(0.05)
    holding = threading.Event()
    released_at: list[float] = []

    def hold_the_row() -> None:
        try:
            with transaction.atomic():
                RateLimitSlot.objects.select_for_update().filter(
                    name=f"{pacing.KEY_PREFIX}{name}"
                ).update(next_at=0)
                holding.set()
                time.sleep(0.5)
                released_at.append(time.time())
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    holding.wait(5)
    booking = book(schedule, name, 0.01)
    holder.join()
    assert booking.held == 1
    assert booking.at >= released_at[0] - 0.01
    connection.close()


def test_the_redis_schedule_survives_a_flushed_script_cache_and_a_dropped_connection(name):
    if not settings.QUEUE_URL.startswith("redis"):
        pytest.skip("the Redis schedule is used (and tested) when QUEUE_URL is redis://")
    admin = redis.Redis.from_url(settings.QUEUE_URL)
    schedule = RedisSchedule(lambda: redis_connection(settings.QUEUE_URL))
    first = book(schedule, name, 0.5)
    admin.script_flush()  # as after a Redis restart: the script must be sent again
    second = book(schedule, name, 0.5)
    kept = schedule._connection()
    kept.send_command("CLIENT", "ID")
    admin.client_kill_filter(_id=kept.read_response())  # the kept connection dropped
    third = book(schedule, name, 0.5)
    assert [b.held for b in (first, second, third)] == [1, 1, 1]
    assert second.at - first.at == pytest.approx(0.5, abs=0.05)
    assert third.at - second.at == pytest.approx(0.5, abs=0.05)
