"""The bench's scenarios: one function each, taking the tier's ``Bench`` and returning a dict.

Add one by writing a function here decorated with ``@scenario("sqlite", "pg")`` (the tiers it
runs on), or in a module of its own that ``bench/run.py`` imports (``scenarios_preferences``).
Its name is what ``BENCH_ONLY`` selects and the key of its results in ``results.json``; the
first line of its docstring describes it in the report. Scenarios run in the order they are
defined, each from a clean slate: ``bench.fresh(users)`` deletes every notification and
empties the queue. Sizes shrink with ``BENCH_QUICK=1``.
"""

from __future__ import annotations

import os
import queue
import re
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.harness import BASE_DIR, FULL, PROFILE_THREADS, QUICK, TOKEN, CpuMeter, rss_kib
from bench.workbench import Bench

Result = dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    name: str
    tiers: tuple[str, ...]
    run: Callable[[Bench], Result]
    about: str


SCENARIOS: dict[str, Scenario] = {}


def scenario(*tiers: str) -> Callable[[Callable[[Bench], Result]], Callable[[Bench], Result]]:
    """Register the decorated function as a scenario run on ``tiers``."""

    def register(fn: Callable[[Bench], Result]) -> Callable[[Bench], Result]:
        about = (fn.__doc__ or fn.__name__).strip().splitlines()[0]
        SCENARIOS[fn.__name__] = Scenario(fn.__name__, tiers, fn, about)
        return fn

    return register


# --- sizes ---------------------------------------------------------------------------------
N = 200 if QUICK else 2000
N_SLOW = N if FULL else N // 5  # 1 thread and the in-request baseline: 50 ms each
THREADS = (PROFILE_THREADS,) if PROFILE_THREADS else (1, 8, 32)
PACED_N = 60 if QUICK else 600
PROVIDER_LIMIT = 30  # the fake Telegram answers 429 above this many messages/second
DEFAULT_RATE = 25.0  # NOTIFY_TELEGRAM_RATE's default
DEFAULT_CHAT_RATE = 1.0  # NOTIFY_TELEGRAM_CHAT_RATE's default
DEFAULT_WORKERS = 8  # NOTIFY_WORKERS's default: what `make run` starts
BULK_SIZES = (10, 100, 1000, 10_000)
MEMORY_N = 500 if QUICK else 10_000
MIXED_N = 100 if QUICK else 400  # per half
BURST_N, BURST_EMAIL_N = (10, 100) if QUICK else (40, 400)
# smtp_sessions: SMTP_N emails over SMTP_SECONDS, a page a second (a minute and more of load).
SMTP_N, SMTP_SECONDS = (400, 20) if QUICK else (3000, 75)
CLICKS_N, CLICKS_PAGES = (500, 10) if QUICK else (2000, 20)
CLICK_GAP = 0.25  # seconds between two clicks when paging (a quick operator, or a script)
CPU_N = 300 if QUICK else 2000
# A remote mail server: TCP + TLS + AUTH on connecting, then a little per message.
SMTP_COSTS = {"session_delay": 0.1, "message_delay": 0.02}
FAST = {"NOTIFY_TELEGRAM_RATE": "1000"}  # pacing on, not binding


def _say(bench: Bench, what: str, row: Result) -> None:
    shown = {k: v for k, v in row.items() if not isinstance(v, list | dict)}
    print(f"  {bench.tier.name} {what}: {shown}", flush=True)


# --- throughput, floor and baseline ----------------------------------------------------------
@scenario("sqlite", "pg")
def throughput(bench: Bench) -> Result:
    """Notifications from one bulk action to the last `sent`, for 1, 8 and 32 threads."""
    rows: Result = {}
    for threads in THREADS:
        n = N_SLOW if threads == 1 else N
        ids = bench.fresh(bench.telegram_users[:n])
        bench.telegram.reset()
        run = bench.click_and_wait(ids, [bench.consumer(threads, **FAST)], 600)
        row = {**bench.timings(ids, run.started), **run.cpu.per_item_ms(n)}
        row["duplicates"] = bench.telegram.stats()["messages"] - n
        rows[str(threads)] = row
        _say(bench, f"{threads:>2} threads", row)
    return rows


@scenario("pg")
def two_consumers(bench: Bench) -> Result:
    """The 32 threads as two consumer processes of 16 (one per core)."""
    ids = bench.fresh(bench.telegram_users[:N])
    bench.telegram.reset()
    consumers = [bench.consumer(16, **FAST) for _ in range(2)]
    run = bench.click_and_wait(ids, consumers, 600)
    row = {**bench.timings(ids, run.started), **run.cpu.per_item_ms(N)}
    row["duplicates"] = bench.telegram.stats()["messages"] - N
    _say(bench, "2 consumers x 16 threads", row)
    return row


@scenario("sqlite", "pg")
def baseline(bench: Bench) -> Result:
    """The original project's way: sent one after another inside the request."""
    import requests
    from django.utils import timezone

    from notifications.models import Notification

    ids = bench.fresh(bench.telegram_users[:N_SLOW], "queued")
    bench.telegram.reset()
    session = requests.Session()
    url = f"{bench.telegram.url}/bot{TOKEN}/sendMessage"
    started = timezone.now()
    for notification in Notification.objects.filter(pk__in=ids).select_related("user__contact"):
        answer = session.post(
            url,
            json={
                "chat_id": notification.user.contact.telegram_chat_id,
                "text": notification.message,
            },
            timeout=10,
        )
        answer.raise_for_status()
        notification.status = Notification.Status.SENT
        notification.channel = "telegram"
        notification.sent_at = timezone.now()
        notification.save()
    row = bench.timings(ids, started)
    _say(bench, "baseline", row)
    return row


@scenario("sqlite", "pg")
def floor(bench: Bench) -> Result:
    """The least a send can cost: claim UPDATE, HTTP call, final UPDATE; plain driver."""
    rows: Result = {}
    for threads in THREADS:
        n = N_SLOW if threads == 1 else N
        ids = bench.fresh(bench.telegram_users[:n], "queued")
        bench.telegram.reset()
        rows[str(threads)] = _floor(bench, ids, threads)
        _say(bench, f"floor {threads:>2} threads", rows[str(threads)])
    return rows


def _floor(bench: Bench, ids: list[int], threads: int) -> Result:
    import requests
    from django.conf import settings
    from requests.adapters import HTTPAdapter

    from notifications.models import Notification

    database = settings.DATABASES["default"]
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=8, pool_maxsize=64))
    url = f"{bench.telegram.url}/bot{TOKEN}/sendMessage"
    work: queue.Queue[int] = queue.Queue()
    for pk in ids:
        work.put(pk)
    sqlite = database["ENGINE"].endswith("sqlite3")
    mark = "?" if sqlite else "%s"
    table = Notification._meta.db_table
    # The claim counts a round, as the service's does; the counter's column is looked up, as
    # it is being renamed (attempt_count → rounds).
    names = {f.name: f.column for f in Notification._meta.concrete_fields}
    counter = names.get("rounds") or names.get("attempt_count")
    count = f", {counter} = {counter} + 1" if counter else ""
    claim = f"UPDATE {table} SET status = 'sending'{count} WHERE id = {mark} AND status = 'queued'"
    finish = f"UPDATE {table} SET status = 'sent' WHERE id = {mark}"

    def connect() -> Any:
        if sqlite:
            conn = sqlite3.connect(database["NAME"], timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn
        import psycopg

        return psycopg.connect(
            host=database["HOST"] or "127.0.0.1",
            port=database["PORT"] or 5432,
            user=database["USER"],
            password=database["PASSWORD"] or None,
            dbname=database["NAME"],
            autocommit=True,
        )

    def worker() -> None:
        conn = connect()
        try:
            while True:
                try:
                    pk = work.get_nowait()
                except queue.Empty:
                    return
                if conn.execute(claim, (pk,)).rowcount != 1:
                    continue
                session.post(url, json={"chat_id": str(pk), "text": f"floor {pk}"}, timeout=10)
                conn.execute(finish, (pk,))
        finally:
            conn.close()

    began = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    return {"n": len(ids), "seconds": round(elapsed, 2), "rate": round(len(ids) / elapsed, 1)}


# --- pacing, the bulk action, memory ---------------------------------------------------------
@scenario("sqlite", "pg")
def paced(bench: Bench) -> Result:
    """600 through a fake answering 429 above 30/s, at the default NOTIFY_TELEGRAM_RATE (25)."""
    from notifications.models import Notification

    ids = bench.fresh(bench.telegram_users[:PACED_N])
    bench.telegram.reset(rate_limit=PROVIDER_LIMIT)
    consumer = bench.consumer(8, NOTIFY_TELEGRAM_RATE=str(DEFAULT_RATE))
    run = bench.click_and_wait(ids, [consumer], 300)
    sent_at = sorted(
        Notification.objects.filter(pk__in=ids).values_list("sent_at", flat=True).iterator()
    )
    span = (sent_at[-1] - sent_at[0]).total_seconds()
    rate = (len(sent_at) - 1) / span
    row = {
        "n": PACED_N,
        "rate": round(rate, 2),
        "configured": DEFAULT_RATE,
        "provider_limit": PROVIDER_LIMIT,
        "share_of_configured": round(rate / DEFAULT_RATE, 3),
        "share_of_provider": round(rate / PROVIDER_LIMIT, 3),
        "too_many": bench.telegram.stats()["too_many"],
        "seconds": round((sent_at[-1] - run.started).total_seconds(), 1),
    }
    _say(bench, "paced", row)
    return row


@scenario("sqlite", "pg")
def bulk(bench: Bench) -> Result:
    """Queries and milliseconds of one "Send selected" for 10 … 10,000 rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from huey.contrib.djhuey import HUEY

    from notifications.models import Notification

    rows: Result = {}
    bench.telegram.reset()
    for size in BULK_SIZES:
        ids = bench.fresh(bench.telegram_users[:size])
        runs = []
        for _ in range(3):
            Notification.objects.filter(pk__in=ids).update(status=Notification.Status.PENDING)
            HUEY.flush()
            with CaptureQueriesContext(connection) as captured:
                began = time.perf_counter()
                bench.click(ids)
                runs.append((time.perf_counter() - began) * 1000)
            queries = len(captured.captured_queries)
        HUEY.flush()
        rows[str(size)] = {"queries": queries, "ms": round(statistics.median(runs), 1)}
        _say(bench, f"bulk {size}", rows[str(size)])
    return rows


@scenario("pg")
def memory(bench: Bench) -> Result:
    """The consumer's resident memory over 10,000 notifications, 32 threads."""
    ids = bench.fresh(bench.telegram_users[:MEMORY_N])
    bench.telegram.reset()
    consumer = bench.consumer(32, **FAST)
    samples: list[tuple[int, int]] = []
    try:
        samples.append((0, rss_kib(consumer.pid)[0]))
        started = bench.click(ids)
        bench.wait_sent(
            ids, 900, consumer, probe=lambda done: samples.append((done, rss_kib(consumer.pid)[0]))
        )
        samples.append((MEMORY_N, rss_kib(consumer.pid)[0]))
        peak = rss_kib(consumer.pid)[1]
    finally:
        bench.stop([consumer])

    def rss_at(share: float) -> int:
        return next(rss for done, rss in samples if done >= share * MEMORY_N)

    row = {
        **bench.timings(ids, started),
        "peak_mib": round(peak / 1024, 1),
        "rss_mib_at_10pct": round(rss_at(0.1) / 1024, 1),
        "rss_mib_at_50pct": round(rss_at(0.5) / 1024, 1),
        "rss_mib_at_end": round(samples[-1][1] / 1024, 1),
        "samples": samples,
    }
    _say(bench, "memory", row)
    return row


# --- the scenarios -----------------------------------------------------------------
@scenario("sqlite")
def mixed(bench: Bench) -> Result:
    """400 Telegram and 400 email-only recipients, interleaved, one click, `make run` settings."""
    half = MIXED_N
    users = [
        u
        for pair in zip(bench.telegram_users[:half], bench.email_users[:half], strict=True)
        for u in pair
    ]
    ids = bench.fresh(users)
    telegram_ids, email_ids = ids[0::2], ids[1::2]
    bench.telegram.reset(rate_limit=PROVIDER_LIMIT)
    bench.smtp.reset(**SMTP_COSTS)
    run = bench.click_and_wait(ids, [bench.consumer(DEFAULT_WORKERS)], 600)
    email_s = bench.finished(email_ids, run.started)
    telegram_s = bench.finished(telegram_ids, run.started)
    pace_bound = half / DEFAULT_RATE
    row = {
        "n_telegram": half,
        "n_email": half,
        "workers": DEFAULT_WORKERS,
        "email_seconds": email_s,
        "telegram_seconds": telegram_s,
        "email_share_of_telegram": round(email_s / telegram_s, 3),
        "pace_bound_seconds": pace_bound,
        "telegram_vs_pace_bound": round(telegram_s / pace_bound, 3),
        "too_many": bench.telegram.stats()["too_many"],
        "smtp_sessions": bench.smtp.stats()["sessions"],
        "channels": bench.channels(ids),
        **run.cpu.per_item_ms(len(ids)),
        "email_curve": [round(t, 3) for t in bench.sent_offsets(email_ids, run.started)],
        "telegram_curve": [round(t, 3) for t in bench.sent_offsets(telegram_ids, run.started)],
    }
    _say(bench, "mixed", row)
    return row


@scenario("sqlite")
def burst(bench: Bench) -> Result:
    """40 notifications to one chat ahead of 400 email-only ones, against the 400 alone."""
    email_users = bench.email_users[:BURST_EMAIL_N]

    # The email-only batch alone.
    ids = bench.fresh(email_users)
    bench.telegram.reset(rate_limit=PROVIDER_LIMIT)
    bench.smtp.reset(**SMTP_COSTS)
    run = bench.click_and_wait(ids, [bench.consumer(DEFAULT_WORKERS)], 600)
    alone = bench.finished(ids, run.started)

    # The same batch behind a burst to one chat (paced at NOTIFY_TELEGRAM_CHAT_RATE, 1/s).
    chat_user = bench.telegram_users[-1]
    ids = bench.fresh([chat_user] * BURST_N + list(email_users))
    burst_ids, email_ids = ids[:BURST_N], ids[BURST_N:]
    bench.telegram.reset(rate_limit=PROVIDER_LIMIT)
    bench.smtp.reset(**SMTP_COSTS)
    consumer = bench.consumer(DEFAULT_WORKERS)
    try:
        started = bench.click(ids)
        bench.wait_sent(email_ids, 600, consumer)
        with_burst = bench.finished(email_ids, started)
        burst_sent_then = bench.sent_count(burst_ids)
        pace_bound = (BURST_N - 1) / DEFAULT_CHAT_RATE
        burst_sent = bench.wait_sent(burst_ids, 2 * pace_bound + 30, consumer, soft=True)
    finally:
        bench.stop([consumer])
    row = {
        "n_email": BURST_EMAIL_N,
        "n_burst": BURST_N,
        "workers": DEFAULT_WORKERS,
        "email_alone_seconds": alone,
        "email_with_burst_seconds": with_burst,
        "overhead": round(with_burst / alone - 1, 3),
        "burst_sent_when_email_done": burst_sent_then,
        "burst_sent": burst_sent,
        "burst_seconds": bench.finished(burst_ids, started) if burst_sent == BURST_N else None,
        "burst_pace_bound_seconds": pace_bound,
        "too_many": bench.telegram.stats()["too_many"],
    }
    _say(bench, "burst", row)
    return row


@scenario("sqlite")
def smtp_sessions(bench: Bench) -> Result:
    """SMTP sessions each worker opens per minute under a sustained load: a page of emails
    every second for SMTP_SECONDS (over a minute in a full run)."""
    per_second = SMTP_N // SMTP_SECONDS
    ids = bench.fresh(bench.email_users[: per_second * SMTP_SECONDS])
    bench.telegram.reset()
    bench.smtp.reset(**SMTP_COSTS)
    consumer = bench.consumer(DEFAULT_WORKERS)
    try:
        cpu = CpuMeter([consumer.pid])
        started = bench.click(ids[:per_second])
        for first in range(per_second, len(ids), per_second):
            time.sleep(1.0)
            bench.click(ids[first : first + per_second])
        bench.wait_sent(ids, 900, consumer)
        cpu.stop()
    finally:
        bench.stop([consumer])
    stats = bench.smtp.stats()
    seconds = bench.finished(ids, started)
    per_session = stats["session_messages"] or [0]
    row = {
        "n": len(ids),
        "workers": DEFAULT_WORKERS,
        "seconds": seconds,
        "rate": round(len(ids) / seconds, 1),
        "sessions": stats["sessions"],
        "messages": stats["messages"],
        "sessions_per_worker_minute": round(
            stats["sessions"] / DEFAULT_WORKERS / (seconds / 60), 2
        ),
        "messages_per_session": round(statistics.mean(per_session), 2),
        "max_messages_per_session": max(per_session),
        "max_open_sessions": stats["max_open"],
        **cpu.per_item_ms(len(ids)),
    }
    _say(bench, "smtp_sessions", row)
    return row


@scenario("sqlite")
def clicks(bench: Bench) -> Result:
    """2,000 notifications as 20 bulk actions of 100 rows against one action of 2,000."""
    users = bench.telegram_users[:CLICKS_N]
    page = CLICKS_N // CLICKS_PAGES

    ids = bench.fresh(users)
    bench.telegram.reset()
    run = bench.click_and_wait(ids, [bench.consumer(DEFAULT_WORKERS, **FAST)], 600)
    one = {**bench.timings(ids, run.started), **run.cpu.per_item_ms(CLICKS_N)}
    one["duplicates"] = bench.telegram.stats()["messages"] - CLICKS_N

    ids = bench.fresh(users)
    bench.telegram.reset()
    consumer = bench.consumer(DEFAULT_WORKERS, **FAST)
    try:
        cpu = CpuMeter([consumer.pid])
        started = bench.click(ids[:page])
        for first in range(page, CLICKS_N, page):
            time.sleep(CLICK_GAP)
            bench.click(ids[first : first + page])
        bench.wait_sent(ids, 900, consumer)
        cpu.stop()
    finally:
        bench.stop([consumer])
    paged = {**bench.timings(ids, started), **cpu.per_item_ms(CLICKS_N)}
    paged["duplicates"] = bench.telegram.stats()["messages"] - CLICKS_N
    row = {
        "n": CLICKS_N,
        "pages": CLICKS_PAGES,
        "gap_seconds": CLICK_GAP,
        "workers": DEFAULT_WORKERS,
        "one_click": one,
        "paged": paged,
        "paged_share_of_one": round(paged["rate"] / one["rate"], 3),
    }
    _say(bench, "clicks", {**row, "one_rate": one["rate"], "paged_rate": paged["rate"]})
    return row


@scenario("pg")
def cpu(bench: Bench) -> Result:
    """The consumer's CPU time per notification: 32 threads, Telegram fake answering in 50 ms."""
    ids = bench.fresh(bench.telegram_users[:CPU_N])
    bench.telegram.reset()
    run = bench.click_and_wait(ids, [bench.consumer(32, **FAST)], 600)
    row = {
        **bench.timings(ids, run.started),
        "threads": 32,
        **run.cpu.per_item_ms(CPU_N),
        "cpu_share_of_a_core": round(run.cpu.total / bench.finished(ids, run.started), 2),
    }
    _say(bench, "cpu", row)
    return row


# --- retention -----------------------------------------------------------------------------
# BENCH_RETENTION_ROWS: the old notifications made and pruned (5,000,000 in a full run).
RETENTION_ROWS = int(os.environ.get("BENCH_RETENTION_ROWS") or (50_000 if QUICK else 5_000_000))
RETENTION_SEND_N = 500 if QUICK else 5000  # the campaign sent with and without the prune
RETENTION_THREADS = 32
RETENTION_SEND_EVERY = 120.0  # seconds from one campaign's start to the next while pruning
# The consumers' own hourly prune finds nothing: only the measured one prunes.
NO_HOURLY_PRUNE = {"NOTIFY_RETENTION_DAYS": "36500"}
RETENTION_TABLES = ("notification", "deliveryattempt", "smspart")
# Old rows over the year before the last 100 days: statuses and channels in realistic shares,
# ids in the order of their creation, as the service makes them.
OLD_NOTIFICATIONS_SQL = """
INSERT INTO notifications_notification
  (user_id, subject, message, status, channel, created_at, queued_at, sent_at, rounds,
   last_error, channels, progress, rendered)
SELECT %(first_user)s + n %% %(users)s, '', 'Old notification ' || n,
  CASE WHEN n %% 100 < 80 THEN 'sent' WHEN n %% 100 < 88 THEN 'delivered'
       WHEN n %% 100 < 90 THEN 'undelivered' WHEN n %% 100 < 97 THEN 'failed'
       ELSE 'cancelled' END,
  CASE WHEN n %% 100 >= 90 THEN '' WHEN n %% 10 < 6 THEN 'telegram' WHEN n %% 10 < 9 THEN 'email'
       ELSE 'sms' END,
  at, at, CASE WHEN n %% 100 < 90 THEN at + interval '2 seconds' END, 1, '', '[]', '{}', '{}'
FROM generate_series(%(first)s, %(last)s) AS n,
  LATERAL (SELECT now() - interval '465 days' + n * interval '365 days' / %(rows)s AS at) AS t
"""
# One attempt per notification (a failed Telegram one before each email and SMS), SMS receipts.
OLD_ATTEMPTS_SQL = """
INSERT INTO notifications_deliveryattempt
  (notification_id, round, channel, transport, outcome, error, provider_message_id, started_at,
   duration_ms, cost, segments, receipt_status, receipt_error)
SELECT id, 1, CASE WHEN channel = '' THEN 'email' ELSE channel END,
  CASE WHEN channel = 'sms' THEN 'sms_api' WHEN channel = '' THEN 'email' ELSE channel END,
  CASE WHEN status IN ('sent', 'delivered', 'undelivered') THEN 'success'
       WHEN status = 'failed' THEN 'permanent' ELSE 'skipped' END,
  CASE WHEN status = 'failed' THEN 'SMTP 550: mailbox unavailable' ELSE '' END,
  CASE WHEN channel = 'sms' THEN 'old-' || id ELSE '' END, created_at, 120,
  CASE WHEN channel = 'sms' THEN 4.95 END, CASE WHEN channel = 'sms' THEN 1 END,
  CASE WHEN status IN ('delivered', 'undelivered') THEN status ELSE '' END, ''
FROM notifications_notification WHERE id BETWEEN %(low)s AND %(high)s;
INSERT INTO notifications_deliveryattempt
  (notification_id, round, channel, transport, outcome, error, provider_message_id, started_at,
   duration_ms, receipt_status, receipt_error)
SELECT id, 1, 'telegram', 'telegram', 'permanent',
  'Telegram 403: Forbidden: bot was blocked by the user', '', created_at, 80, '', ''
FROM notifications_notification
WHERE id BETWEEN %(low)s AND %(high)s AND channel IN ('email', 'sms') AND id %% 4 = 0;
INSERT INTO notifications_smspart
  (transport, message_id, attempt_id, part, state, provider_status, error_code, created_at)
SELECT 'sms_api', provider_message_id, id, 1, 'delivered', '1', '', started_at
FROM notifications_deliveryattempt
WHERE notification_id BETWEEN %(low)s AND %(high)s AND channel = 'sms' AND outcome = 'success';
"""


def _old_rows(bench: Bench, rows: int) -> None:
    """``rows`` final notifications older than NOTIFY_RETENTION_DAYS, their attempts and SMS
    receipts, by SQL, a million at a time; then ANALYZE."""
    from django.db import connection, transaction

    users = bench.telegram_users
    for first in range(1, rows + 1, 1_000_000):
        last = min(first + 999_999, rows)
        with transaction.atomic(), connection.cursor() as cursor:
            params = {"first_user": users[0].pk, "users": len(users), "rows": rows}
            cursor.execute(OLD_NOTIFICATIONS_SQL, {**params, "first": first, "last": last})
            sequence = "pg_get_serial_sequence('notifications_notification', 'id')"
            high = _one(cursor, f"SELECT currval({sequence})")  # nothing else inserts meanwhile
            cursor.execute(OLD_ATTEMPTS_SQL, {"low": high - (last - first), "high": high})
    with connection.cursor() as cursor:
        for table in RETENTION_TABLES:
            cursor.execute(f"ANALYZE notifications_{table}")


def _sizes() -> dict[str, int]:
    """Bytes of each table with its indexes and TOAST (pg_total_relation_size)."""
    from django.db import connection

    with connection.cursor() as cursor:
        return {
            table: _one(cursor, "SELECT pg_total_relation_size(%s)", [f"notifications_{table}"])
            for table in RETENTION_TABLES
        }


def _one(cursor: Any, sql: str, params: list | None = None) -> Any:
    cursor.execute(sql, params)
    return cursor.fetchone()[0]


def _deleted_so_far() -> int:
    """Notifications deleted since the server's statistics began (pg_stat_user_tables)."""
    from django.db import connection

    with connection.cursor() as cursor:
        sql = "SELECT n_tup_del FROM pg_stat_user_tables WHERE relname = %s"
        return _one(cursor, sql, ["notifications_notification"])


def _campaign_send(bench: Bench) -> Result:
    """A campaign of RETENTION_SEND_N Telegram notifications sent by a consumer of
    RETENTION_THREADS threads: from the click to the last `sent`."""
    from notifications.models import Campaign, Notification

    campaign = Campaign.objects.create(name="bench", state=Campaign.State.READY)
    users = bench.telegram_users[:RETENTION_SEND_N]
    made = Notification.objects.bulk_create(
        [
            Notification(user=u, message=f"bench {i}", campaign=campaign)
            for i, u in enumerate(users)
        ],
        batch_size=2000,
    )
    ids = [n.pk for n in made]
    bench.telegram.reset()
    consumer = bench.consumer(RETENTION_THREADS, **FAST, **NO_HOURLY_PRUNE)
    run = bench.click_and_wait(ids, [consumer], 600)
    return {**bench.timings(ids, run.started), **run.cpu.per_item_ms(len(ids))}


@scenario("pg")
def retention(bench: Bench) -> Result:
    """A campaign's send throughput while 5,000,000 old notifications are pruned, against none."""
    from django.db import connection

    from notifications import rollup

    bench.fresh([])
    began = time.perf_counter()
    _old_rows(bench, RETENTION_ROWS)
    made_seconds = time.perf_counter() - began
    rollup.refresh()
    before = _sizes()
    quiet = [_campaign_send(bench)]
    _say(bench, "retention, no prune", quiet[-1])

    # `manage.py prune_old`, as the hourly task runs it, with no time budget.
    deleted_at_start = _deleted_so_far()
    began = time.perf_counter()
    pruner = subprocess.Popen(
        [sys.executable, "manage.py", "prune_old", "--seconds", "86400"],
        cwd=BASE_DIR,
        env=bench.service_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pruning = []  # a campaign every RETENTION_SEND_EVERY, from the start to the end
    try:
        while _deleted_so_far() == deleted_at_start and pruner.poll() is None:
            time.sleep(0.2)
        while pruner.poll() is None:
            next_at = time.monotonic() + RETENTION_SEND_EVERY
            pruning.append({**_campaign_send(bench), "pruning_throughout": pruner.poll() is None})
            _say(bench, "retention, while pruning", pruning[-1])
            while pruner.poll() is None and time.monotonic() < next_at:
                time.sleep(0.5)
        output, _ = pruner.communicate()
    finally:
        if pruner.poll() is None:
            pruner.terminate()
            pruner.wait()
    prune_seconds = time.perf_counter() - began
    found = re.search(r"Deleted (\d+) notification\(s\), (\d+) attempt\(s\), (\d+) SMS", output)
    if pruner.returncode or not found:
        raise RuntimeError(f"prune_old failed ({pruner.returncode}): {output[-2000:]}")
    notifications, attempts, sms_parts = (int(n) for n in found.groups())

    # VACUUM (what autovacuum would do next, and would do during the campaign after), then
    # the same campaign again with no prune, then VACUUM FULL.
    with connection.cursor() as cursor:
        for table in RETENTION_TABLES:
            cursor.execute(f"VACUUM notifications_{table}")
    vacuumed = _sizes()
    quiet.append(_campaign_send(bench))
    _say(bench, "retention, no prune (after)", quiet[-1])
    with connection.cursor() as cursor:
        for table in RETENTION_TABLES:
            cursor.execute(f"VACUUM FULL notifications_{table}")
    compacted = _sizes()
    during = [r for r in pruning if r["pruning_throughout"]]  # not the one the prune's end cut
    quiet_rate = statistics.mean(r["rate"] for r in quiet)
    pruning_rate = statistics.mean(r["rate"] for r in during) if during else 0.0
    row = {
        "rows": RETENTION_ROWS,
        "made_seconds": round(made_seconds, 1),
        "send_n": RETENTION_SEND_N,
        "threads": RETENTION_THREADS,
        "quiet": quiet,
        "pruning": pruning,
        "quiet_rate": round(quiet_rate, 1),
        "pruning_rate": round(pruning_rate, 1),
        "share": round(pruning_rate / quiet_rate, 3) if quiet_rate else 0.0,
        "pruning_throughout": bool(during),
        "pruned": {"notifications": notifications, "attempts": attempts, "sms_parts": sms_parts},
        "prune_seconds": round(prune_seconds, 1),
        "prune_rate": round(notifications / prune_seconds, 1),
        "bytes_before": before,
        "bytes_vacuumed": vacuumed,
        "bytes_compacted": compacted,
    }
    _say(bench, "retention", row)
    return row
