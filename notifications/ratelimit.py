"""Pacing sends to a provider, shared by every worker thread, consumer process and host.

Each pace is a virtual schedule (GCRA): it stores when its next slot starts. A worker takes
the slot ``max(now, next)`` and moves ``next`` one interval on; then it sleeps until its slot
and sends. Slots are at least ``1/rate`` apart, so no window of one second ever holds more than
``rate`` sends, unlike fixed one-second counters, which allow twice the rate across a window
boundary and so earn 429s from a provider that counts over a sliding second.

A pace may also space sends to one key (a chat): a key's next send waits at least
``1/key_rate`` after its previous one. A send to a busy key takes no global slot, so one
chatty recipient doesn't waste the others' capacity.

Where the schedule lives: in Redis when the queue is Redis (one Lua script per send, on Redis's
clock, so hosts with drifting clocks agree), else in the database (``RateLimitSlot``, one short
transaction of conditional writes, on this host's clock; the embedded and single-server tiers
run on one host).

If the schedule's store is unreachable, ``acquire`` raises the same rate-limited error.

A worker waits at most ``max_wait`` seconds for a slot; past that, ``acquire`` raises a
rate-limited ``DeliveryError``, and the notification goes back to the queue for later without
falling through to a paid channel.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from redis.exceptions import RedisError

from notifications.senders.base import DeliveryError

KEY_PREFIX = "notify:pace:"
# How long an idle key's row is kept in the database schedule before it is pruned.
DATABASE_KEEP_SECONDS = 3600.0


@dataclass(frozen=True)
class Reservation:
    """A slot taken (``granted``: sleep ``wait`` seconds, then send), or when to ask again."""

    granted: bool
    wait: float


class Schedule(Protocol):
    def reserve(
        self, name: str, interval: float, key: str, key_interval: float, max_wait: float
    ) -> Reservation:
        """Take the next slot of ``name`` (and of ``key``), if it starts within ``max_wait``."""


# KEYS[1]: the pace's schedule, KEYS[2]: the key's (or a dummy when there is none).
# ARGV: interval, key interval, max wait (seconds). Returns {granted, wait} as strings.
_RESERVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local key_interval = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
if key_interval > 0 then
  local key_next = tonumber(redis.call('GET', KEYS[2]) or '0')
  if key_next > now then
    return {'0', string.format('%.6f', key_next - now)}
  end
end
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
if slot - now > max_wait then
  return {'0', string.format('%.6f', slot - now)}
end
local ahead = slot - now
redis.call('SET', KEYS[1], string.format('%.6f', slot + interval),
           'PX', math.ceil((ahead + interval) * 1000) + 1000)
if key_interval > 0 then
  redis.call('SET', KEYS[2], string.format('%.6f', slot + key_interval),
             'PX', math.ceil((ahead + key_interval) * 1000) + 1000)
end
return {'1', string.format('%.6f', ahead)}
"""


class RedisSchedule:
    """The schedule in Redis: one atomic script per reservation, on Redis's clock."""

    def __init__(self, client) -> None:
        self.client = client
        self.script = client.register_script(_RESERVE_LUA)

    def reserve(
        self, name: str, interval: float, key: str, key_interval: float, max_wait: float
    ) -> Reservation:
        granted, wait = self.script(
            keys=[f"{KEY_PREFIX}{name}", f"{KEY_PREFIX}{name}:{key}"],
            args=[interval, key_interval, max_wait],
        )
        return Reservation(granted=granted in (b"1", "1"), wait=float(wait))


class _Busy(Exception):
    def __init__(self, wait: float) -> None:
        self.wait = wait


class DatabaseSchedule:
    """The schedule in the ``RateLimitSlot`` table: one short transaction per reservation.

    First the key's row is taken with a conditional upsert (only if its next slot has come),
    then the pace's row is moved on with a conditional upsert that returns the slot; if the
    pace is booked further ahead than ``max_wait`` the transaction is rolled back, leaving the
    key free. Concurrent workers serialise on the pace's row for the length of two statements.
    """

    def __init__(self) -> None:
        from notifications.models import RateLimitSlot

        self.table = connection.ops.quote_name(RateLimitSlot._meta.db_table)

    def _greatest(self) -> str:
        return "MAX" if connection.vendor == "sqlite" else "GREATEST"

    def reserve(
        self, name: str, interval: float, key: str, key_interval: float, max_wait: float
    ) -> Reservation:
        now = time.time()
        pace_key = f"{KEY_PREFIX}{name}"
        chat_key = f"{KEY_PREFIX}{name}:{key}"
        table = self.table
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                if key_interval > 0:
                    # Hold the key until the slot is known (the row stays locked till commit).
                    cursor.execute(
                        f"INSERT INTO {table} (name, next_at) VALUES (%s, %s) "
                        f"ON CONFLICT (name) DO UPDATE SET next_at = excluded.next_at "
                        f"WHERE {table}.next_at <= %s",
                        [chat_key, now + max_wait + key_interval, now],
                    )
                    if cursor.rowcount != 1:
                        cursor.execute(f"SELECT next_at FROM {table} WHERE name = %s", [chat_key])
                        row = cursor.fetchone()
                        raise _Busy(max((row[0] if row else now) - now, 0.01))
                cursor.execute(
                    f"INSERT INTO {table} (name, next_at) VALUES (%s, %s) "
                    f"ON CONFLICT (name) DO UPDATE "
                    f"SET next_at = {self._greatest()}({table}.next_at, %s) + %s "
                    f"WHERE {table}.next_at <= %s RETURNING next_at",
                    [pace_key, now + interval, now, interval, now + max_wait],
                )
                row = cursor.fetchone()
                if row is None:
                    cursor.execute(f"SELECT next_at FROM {table} WHERE name = %s", [pace_key])
                    booked = cursor.fetchone()
                    raise _Busy(max((booked[0] if booked else now) - now, 0.01))
                slot = row[0] - interval
                if key_interval > 0:
                    cursor.execute(
                        f"UPDATE {table} SET next_at = %s WHERE name = %s",
                        [slot + key_interval, chat_key],
                    )
        except _Busy as busy:
            return Reservation(granted=False, wait=busy.wait)
        if random.random() < 0.001:
            self.prune(now)
        return Reservation(granted=True, wait=max(slot - now, 0.0))

    def prune(self, now: float) -> None:
        """Forget keys idle for an hour (one row per chat would otherwise pile up)."""
        from notifications.models import RateLimitSlot

        RateLimitSlot.objects.filter(next_at__lt=now - DATABASE_KEEP_SECONDS).delete()


@cache
def schedule() -> Schedule:
    """Redis's when the queue is Redis (shared by every host), else the database's."""
    from huey.contrib.djhuey import HUEY
    from huey.storage import RedisStorage

    if isinstance(HUEY.storage, RedisStorage):
        return RedisSchedule(HUEY.storage.conn)
    return DatabaseSchedule()


def acquire(
    name: str,
    *,
    rate: float,
    key: str = "",
    key_rate: float = 0.0,
    max_wait: float,
    what: str = "",
) -> float:
    """Wait for a slot of pace ``name`` (and of ``key``); returns the seconds waited.

    ``rate`` and ``key_rate`` are sends per second (0: no limit). Raises a rate-limited
    ``DeliveryError`` (``retry_after`` set) when no slot comes within ``max_wait`` seconds.
    """
    if rate <= 0 and key_rate <= 0:
        return 0.0
    interval = 1.0 / rate if rate > 0 else 0.0
    key_interval = 1.0 / key_rate if key_rate > 0 else 0.0
    began = time.monotonic()
    deadline = began + max_wait
    while True:
        left = max(deadline - time.monotonic(), 0.0)
        try:
            reservation = schedule().reserve(name, interval, key, key_interval, left)
        except (OperationalError, InterfaceError, RedisError) as err:
            # No schedule, no safe pace: wait for it rather than send blind or fall through.
            raise DeliveryError(
                f"{what or name} pacing unavailable ({err}); retrying later", retry_after=1.0
            ) from err
        if reservation.granted:
            time.sleep(reservation.wait)
            return time.monotonic() - began
        if reservation.wait > deadline - time.monotonic():
            raise DeliveryError(
                f"{what or name} pacing: no free slot within {max_wait:g}s; retrying later",
                retry_after=reservation.wait,
            )
        time.sleep(reservation.wait)


def telegram_pace(chat_id: str) -> float:
    """Wait for a Telegram ``sendMessage`` slot: NOTIFY_TELEGRAM_RATE overall and
    NOTIFY_TELEGRAM_CHAT_RATE for ``chat_id``. Raises a rate-limited ``DeliveryError``."""
    return acquire(
        "telegram",
        rate=settings.NOTIFY_TELEGRAM_RATE,
        key=chat_id,
        key_rate=settings.NOTIFY_TELEGRAM_CHAT_RATE,
        max_wait=settings.NOTIFY_TELEGRAM_PACE_MAX_WAIT,
        what="Telegram",
    )
