"""Pacing sends to a provider, shared by every worker thread, consumer process and host.

A pace is a virtual schedule (GCRA): it stores when its next slot starts. Booking a slot takes
``max(now, next)`` and moves ``next`` on by one interval, so slots are at least ``1/rate``
apart and no sliding second ever holds more than ``rate`` sends (a counter per fixed
one-second window would allow twice the rate across a window boundary, which a provider
counting over a sliding second answers with 429).

Nobody sleeps here. ``book_all`` answers at once: a slot is granted when it starts within
``horizon`` seconds, and the caller waits for it without holding a worker (``tasks`` keeps a
timer for it); otherwise nothing is booked and the answer says when to ask again.

Telegram holds two paces per message: its chat's (1/s) first, then the bot's (25/s). A send
to a busy chat takes no bot slot, so one chatty recipient doesn't waste the others' capacity.

A provider that answers "too many requests, retry after N s" (Telegram's 429 with
``retry_after``) is obeyed for the whole schedule: ``push_back`` moves its next slot to N s from
now (never earlier than it already was), so every worker and host waits, not only the send
that heard it, and no slot is handed out inside the provider's penalty. Slots booked before
the 429 are already handed out, so it also sets the pace's pause (``paused_until``), which a
send reads just before it goes: inside the pause, it books again instead.

Where the schedule lives: in Redis when the queue is Redis (one Lua script per booking, on
Redis's clock, so hosts with drifting clocks agree), else in the database (``RateLimitSlot``,
one short transaction that reads the clock after taking the row's lock).
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import redis
from django.db import InterfaceError, OperationalError, connection, transaction
from huey.contrib.djhuey import HUEY
from huey.storage import RedisStorage
from redis.exceptions import RedisError

from notifications.models import RateLimitSlot
from notifications.senders.base import DeliveryError, Pace

logger = logging.getLogger(__name__)

KEY_PREFIX = "notify:pace:"
# How long an idle pace's row is kept in the database schedule before it is pruned.
DATABASE_KEEP_SECONDS = 3600.0


@dataclass(frozen=True)
class Booking:
    """What ``book_all`` booked: the first ``held`` paces asked for, the latest of their slots
    starting at ``at`` (Unix time, here). ``refused``: the next pace's slot is beyond the
    horizon and was not booked; ``at`` is then when to ask again."""

    held: int
    at: float
    refused: bool = False


class Schedule(Protocol):
    def book_all(
        self, names: list[str], intervals: list[float], horizon: float, tolerance: float
    ) -> Booking:
        """Book the paces in order, each only within ``horizon``; stop after booking one whose
        slot is more than ``tolerance`` ahead (the caller waits for it, then books the rest)."""

    def push_back(self, name: str, seconds: float) -> float:
        """No slot of ``name`` before ``seconds`` from now, and ``name`` paused until then;
        returns when its next slot is (Unix time)."""

    def paused_until(self, names: list[str]) -> float:
        """The latest pause of ``names`` (Unix time; 0 when none was set)."""


# KEYS: the paces. ARGV: horizon, tolerance, then each pace's interval (seconds).
# Returns {held, seconds from now to the latest slot booked (or to the refused one), refused}.
_BOOK_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local horizon = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local held = 0
local latest = now
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 + i])
  local slot = math.max(tonumber(redis.call('GET', key) or '0'), now)
  if slot - now > horizon then
    return {tostring(held), string.format('%.6f', slot - now), '1'}
  end
  redis.call('SET', key, string.format('%.6f', slot + interval),
             'PX', math.ceil((slot - now + interval) * 1000) + 1000)
  held = held + 1
  if slot > latest then latest = slot end
  if slot - now > tolerance then break end
end
return {tostring(held), string.format('%.6f', latest - now), '0'}
"""
_BOOK_SHA = hashlib.sha1(_BOOK_LUA.encode()).hexdigest()

# KEYS: the pace, its pause. ARGV: seconds. Returns the seconds from now to its next slot.
_PUSH_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wanted = now + tonumber(ARGV[1])
local ttl = math.ceil(tonumber(ARGV[1]) * 1000) + 1000
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if wanted > slot then
  redis.call('SET', KEYS[1], string.format('%.6f', wanted), 'PX', ttl)
  slot = wanted
end
if wanted > tonumber(redis.call('GET', KEYS[2]) or '0') then
  redis.call('SET', KEYS[2], string.format('%.6f', wanted), 'PX', ttl)
end
return string.format('%.6f', slot - now)
"""
PAUSE_PREFIX = "notify:pause:"


class RedisSchedule:
    """The schedule in Redis: one atomic script per booking, on Redis's clock.

    Each thread books over a connection of its own (``connect()`` makes a redis-py
    ``Connection``), kept: a command through a pool checks the connection and takes the
    pool's lock every time, which cost a worker more than the booking itself.
    """

    def __init__(self, connect) -> None:
        self.connect = connect
        self.local = threading.local()

    def _connection(self):
        conn = getattr(self.local, "connection", None)
        if conn is None:
            conn = self.local.connection = self.connect()
        return conn

    def _call(self, *args):
        """One command; a connection that went stale (Redis restarted) is reopened once.
        A booking repeated that way only spaces the next slots further: never closer."""
        conn = self._connection()
        try:
            conn.send_command(*args)
            return conn.read_response()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            conn.disconnect()
        conn.send_command(*args)
        return conn.read_response()

    def book_all(
        self, names: list[str], intervals: list[float], horizon: float, tolerance: float
    ) -> Booking:
        keys = [f"{KEY_PREFIX}{name}" for name in names]
        args = [horizon, tolerance, *intervals]
        try:
            reply = self._call("EVALSHA", _BOOK_SHA, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:  # a new or flushed Redis: EVAL caches it
            reply = self._call("EVAL", _BOOK_LUA, len(keys), *keys, *args)
        held, ahead, refused = reply
        return Booking(
            held=int(held), at=time.time() + float(ahead), refused=refused in (b"1", "1")
        )

    def push_back(self, name: str, seconds: float) -> float:
        keys = (f"{KEY_PREFIX}{name}", f"{PAUSE_PREFIX}{name}")
        ahead = self._call("EVAL", _PUSH_LUA, 2, *keys, seconds)
        return time.time() + float(ahead)

    def paused_until(self, names: list[str]) -> float:
        # Unix time on Redis's clock, read on ours: hosts' clocks agree to well under a pause.
        values = self._call("MGET", *(f"{PAUSE_PREFIX}{name}" for name in names))
        return max((float(v) for v in values if v is not None), default=0.0)


class DatabaseSchedule:
    """The schedule in the ``RateLimitSlot`` table: one short transaction per booking.

    The rows are created if missing, then locked in one order (``SELECT … FOR UPDATE`` on
    PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` holds the write lock already), and only then is
    the clock read, so two bookings never compute their slots from the same stale ``now``.
    """

    def __init__(self) -> None:
        self.table = connection.ops.quote_name(RateLimitSlot._meta.db_table)

    def book_all(
        self, names: list[str], intervals: list[float], horizon: float, tolerance: float
    ) -> Booking:
        keys = [f"{KEY_PREFIX}{name}" for name in names]
        table = self.table
        marks = ", ".join(["%s"] * len(keys))
        lock = "" if connection.vendor == "sqlite" else " FOR UPDATE"
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (name, next_at) VALUES {', '.join(['(%s, 0)'] * len(keys))} "
                f"ON CONFLICT (name) DO NOTHING",
                keys,
            )
            cursor.execute(
                f"SELECT name, next_at FROM {table} WHERE name IN ({marks}) ORDER BY name{lock}",
                keys,
            )
            next_at = dict(cursor.fetchall())
            now = time.time()  # after the lock: see the class docstring
            held, latest, booked = 0, now, []
            for key, interval in zip(keys, intervals, strict=True):
                slot = max(next_at[key], now)
                if slot - now > horizon:
                    self._save(cursor, booked)
                    return Booking(held=held, at=slot, refused=True)
                booked.append((slot + interval, key))
                held += 1
                latest = max(latest, slot)
                if slot - now > tolerance:
                    break
            self._save(cursor, booked)
        if random.random() < 0.001:
            self.prune(now)
        return Booking(held=held, at=latest)

    def push_back(self, name: str, seconds: float) -> float:
        keys = [f"{KEY_PREFIX}{name}", f"{PAUSE_PREFIX}{name}"]
        with transaction.atomic(), connection.cursor() as cursor:
            # The clock is read after the rows' lock, as for a booking.
            cursor.execute(
                f"INSERT INTO {self.table} (name, next_at) VALUES (%s, 0), (%s, 0) "
                f"ON CONFLICT (name) DO NOTHING",
                keys,
            )
            lock = "" if connection.vendor == "sqlite" else " FOR UPDATE"
            cursor.execute(
                f"SELECT name, next_at FROM {self.table} WHERE name IN (%s, %s) "
                f"ORDER BY name{lock}",
                keys,
            )
            current = dict(cursor.fetchall())
            wanted = time.time() + seconds
            moved = [(max(current[key], wanted), key) for key in keys]
            self._save(cursor, moved)
        return moved[0][0]

    def paused_until(self, names: list[str]) -> float:
        keys = [f"{PAUSE_PREFIX}{name}" for name in names]
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT max(next_at) FROM {self.table} WHERE name IN "
                f"({', '.join(['%s'] * len(keys))})",
                keys,
            )
            return cursor.fetchone()[0] or 0.0

    def _save(self, cursor, booked: list[tuple[float, str]]) -> None:
        if booked:
            cursor.executemany(f"UPDATE {self.table} SET next_at = %s WHERE name = %s", booked)

    def prune(self, now: float) -> None:
        """Forget paces idle for an hour (one row per chat would otherwise pile up)."""
        RateLimitSlot.objects.filter(next_at__lt=now - DATABASE_KEEP_SECONDS).delete()


@cache
def schedule() -> Schedule:
    """Redis's when the queue is Redis (shared by every host), else the database's."""
    if isinstance(HUEY.storage, RedisStorage):
        pool = HUEY.storage.pool
        return RedisSchedule(lambda: pool.connection_class(**pool.connection_kwargs))
    return DatabaseSchedule()


def book_all(paces: list[Pace], horizon: float, tolerance: float) -> Booking:
    """Book ``paces`` in order (see ``Schedule.book_all``); a rate of 0 means no limit.

    Raises a rate-limited ``DeliveryError`` when the schedule's store is unreachable: with no
    schedule there is no safe pace.
    """
    limited = [pace for pace in paces if pace.rate > 0]
    if not limited:
        return Booking(held=len(paces), at=time.time())
    try:
        booking = schedule().book_all(
            [pace.name for pace in limited],
            [1.0 / pace.rate for pace in limited],
            horizon,
            tolerance,
        )
    except (OperationalError, InterfaceError, RedisError) as err:
        names = ", ".join(pace.name for pace in limited)
        raise DeliveryError(
            f"pacing of {names} unavailable ({err}); retrying later", retry_after=1.0
        ) from err
    if booking.held == len(limited) and not booking.refused:
        return Booking(held=len(paces), at=booking.at)
    # Unlimited paces count as held wherever they stand; report progress in ``paces`` terms.
    held, seen = 0, 0
    for pace in paces:
        if pace.rate > 0:
            if seen == booking.held:
                break
            seen += 1
        held += 1
    return Booking(held=held, at=booking.at, refused=booking.refused)


def push_back(name: str, seconds: float) -> float | None:
    """Hand out no slot of ``name`` for ``seconds`` from now (a provider's 429 said so), on
    every worker and host; returns when its next slot is, or None when the schedule's store
    is unreachable (logged: the send that heard the 429 still waits its own retry_after)."""
    try:
        return schedule().push_back(name, seconds)
    except (OperationalError, InterfaceError, RedisError) as err:
        logger.warning("pace %s not pushed back by %.1fs: %s", name, seconds, err)
        return None


def paused_until(names: list[str]) -> float:
    """When the latest pause of the paces ``names`` ends (Unix time; 0 when none, or when the
    store is unreachable: a send then goes on its booked slot, as before pauses)."""
    try:
        return schedule().paused_until(names)
    except (OperationalError, InterfaceError, RedisError) as err:
        logger.warning("pauses of %s not read: %s", ", ".join(names), err)
        return 0.0
