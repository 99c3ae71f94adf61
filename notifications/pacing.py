"""Pacing sends to a provider, shared by every worker thread, consumer process and host.

A pace is a virtual schedule (GCRA): it stores when its next slot starts. Booking a slot takes
``max(now, next)`` and moves ``next`` on by one interval, so slots are at least ``1/rate``
apart and no sliding second ever holds more than ``rate`` sends (a counter per fixed
one-second window would allow twice the rate across a window boundary, which a provider
counting over a sliding second answers with 429).

Nobody sleeps here. ``book`` answers at once: a slot is granted when it starts within
``horizon`` seconds, and the caller waits for it without holding a worker (``tasks`` keeps a
timer for it); otherwise nothing is booked and the answer says when to ask again.

Telegram holds two paces per message: its chat's (1/s) first, then the bot's (25/s). A send
to a busy chat takes no bot slot, so one chatty recipient doesn't waste the others' capacity.

Where the schedule lives: in Redis when the queue is Redis (one Lua script per booking, on
Redis's clock, so hosts with drifting clocks agree), else in the database (``RateLimitSlot``,
one short transaction that reads the clock after taking the row's lock).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from django.db import InterfaceError, OperationalError, connection, transaction
from huey.contrib.djhuey import HUEY
from huey.storage import RedisStorage
from redis.exceptions import RedisError

from notifications.models import RateLimitSlot
from notifications.senders.base import DeliveryError, Pace

KEY_PREFIX = "notify:pace:"
# How long an idle pace's row is kept in the database schedule before it is pruned.
DATABASE_KEEP_SECONDS = 3600.0


@dataclass(frozen=True)
class Booking:
    """``granted``: the slot starting at ``at``; else ask again at ``at`` (Unix time, here)."""

    granted: bool
    at: float


class Schedule(Protocol):
    def book(self, name: str, interval: float, horizon: float) -> Booking:
        """Take the next slot of ``name`` if it starts within ``horizon`` seconds."""


# KEYS[1]: the pace. ARGV: interval, horizon (seconds). Returns {granted, seconds from now}.
_BOOK_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local horizon = tonumber(ARGV[2])
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
local ahead = slot - now
if ahead > horizon then
  return {'0', string.format('%.6f', ahead)}
end
redis.call('SET', KEYS[1], string.format('%.6f', slot + interval),
           'PX', math.ceil((ahead + interval) * 1000) + 1000)
return {'1', string.format('%.6f', ahead)}
"""


class RedisSchedule:
    """The schedule in Redis: one atomic script per booking, on Redis's clock."""

    def __init__(self, client) -> None:
        self.client = client
        self.script = client.register_script(_BOOK_LUA)

    def book(self, name: str, interval: float, horizon: float) -> Booking:
        granted, ahead = self.script(keys=[f"{KEY_PREFIX}{name}"], args=[interval, horizon])
        return Booking(granted=granted in (b"1", "1"), at=time.time() + float(ahead))


class DatabaseSchedule:
    """The schedule in the ``RateLimitSlot`` table: one short transaction per booking.

    The row is created if missing, then locked (``SELECT … FOR UPDATE`` on PostgreSQL;
    SQLite's ``BEGIN IMMEDIATE`` holds the write lock already), and only then is the clock
    read, so two bookings never compute their slot from the same stale ``now``.
    """

    def __init__(self) -> None:
        self.table = connection.ops.quote_name(RateLimitSlot._meta.db_table)

    def book(self, name: str, interval: float, horizon: float) -> Booking:
        key = f"{KEY_PREFIX}{name}"
        table = self.table
        lock = "" if connection.vendor == "sqlite" else " FOR UPDATE"
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (name, next_at) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING",
                [key],
            )
            cursor.execute(f"SELECT next_at FROM {table} WHERE name = %s{lock}", [key])
            (next_at,) = cursor.fetchone()
            now = time.time()  # after the lock: see the class docstring
            slot = max(next_at, now)
            if slot - now > horizon:
                return Booking(granted=False, at=slot)
            cursor.execute(
                f"UPDATE {table} SET next_at = %s WHERE name = %s", [slot + interval, key]
            )
        if random.random() < 0.001:
            self.prune(now)
        return Booking(granted=True, at=slot)

    def prune(self, now: float) -> None:
        """Forget paces idle for an hour (one row per chat would otherwise pile up)."""
        RateLimitSlot.objects.filter(next_at__lt=now - DATABASE_KEEP_SECONDS).delete()


@cache
def schedule() -> Schedule:
    """Redis's when the queue is Redis (shared by every host), else the database's."""
    if isinstance(HUEY.storage, RedisStorage):
        return RedisSchedule(HUEY.storage.conn)
    return DatabaseSchedule()


def book(pace: Pace, horizon: float) -> Booking:
    """Book the next slot of ``pace`` if it starts within ``horizon`` seconds.

    A rate of 0 means no limit (granted now). Raises a rate-limited ``DeliveryError`` when
    the schedule's store is unreachable: with no schedule there is no safe pace.
    """
    if pace.rate <= 0:
        return Booking(granted=True, at=time.time())
    try:
        return schedule().book(pace.name, 1.0 / pace.rate, horizon)
    except (OperationalError, InterfaceError, RedisError) as err:
        raise DeliveryError(
            f"pacing of {pace.name} unavailable ({err}); retrying later", retry_after=1.0
        ) from err
