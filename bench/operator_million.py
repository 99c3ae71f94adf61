"""The operator's views at a million notifications on PostgreSQL: the dashboard, the admin's
notification list, and the API's list.

    .venv/bin/python bench/operator_million.py                  # ~6 min; prints markdown tables
    .venv/bin/python bench/operator_million.py --rows 100000    # a quick check of the bench
    .venv/bin/python bench/operator_million.py --keep           # reuse the database filled before

The database (``--database-url``, default ``postgres://postgres@127.0.0.1:5432/
notify_bench_million``) is dropped, created, migrated and filled by ``bench/million.py``:
1,000,000 notifications over 35 days, 1.09 attempts each, bounce texts carrying addresses.
``TIME_ZONE`` is one where it is 22:00–23:00 now (the dashboard's worst case: it reads today
and yesterday live). Timed warm, as the median of ``--repeat`` runs:

- the dashboard (``statistics.dashboard`` and the whole page, logged in, through Django's test
  client): 30 days before any rollup, the hourly rollup itself (once), then today, 7 and 30
  days after it;
- the admin's list (the whole page, the same way): the first page; a search by a rare and a
  common word of the messages, a username, an email, an id; the last page it offers; one
  campaign;
- the API's list (``GET /api/v1/notifications``, 50 a page) served by gunicorn as ``make run``
  serves it (2 workers × 4 threads), throttled at a rate that never binds, on the database
  tier (the queue and the throttle's schedule in PostgreSQL) and with Redis
  (``--redis``, default ``redis://127.0.0.1:6379/13``, flushed): p50 and p95 of 30 requests
  from one client for the first page, page 200 (following ``next``), date filters, a user, a
  rare status and a channel; and the rows the throttle wrote per request.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

from bench import million  # noqa: E402 (the project's root is on the path only from here)
from bench.api_create import Server, percentile  # noqa: E402
from bench.operator_bench import late_evening_zone  # noqa: E402

DATABASE_URL = "postgres://postgres@127.0.0.1:5432/notify_bench_million"
REDIS_URL = "redis://127.0.0.1:6379/13"
CHANGELIST = "/admin/notifications/notification/"


def fresh(url: str) -> None:
    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def service_env(url: str, queue: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="notification_service.settings",
        NOTIFY_SKIP_DOTENV="1",
        NOTIFY_VAR_DIR=str(BASE_DIR / "var" / "bench_million"),
        DATABASE_URL=url,
        QUEUE_URL=queue,
        DJANGO_SECRET_KEY="bench",
        DJANGO_ALLOWED_HOSTS="testserver,127.0.0.1",
        LOG_LEVEL="WARNING",
        NOTIFY_API_RATE="1000000/min",
        TIME_ZONE=late_evening_zone(),
    )
    return env


def timed(work, repeat: int) -> float:
    """Seconds ``work()`` takes, warm: the median of ``repeat`` runs after one."""
    work()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def dashboard(client, repeat: int) -> list[dict[str, Any]]:
    from notifications import rollup, statistics
    from notifications.models import DashboardCount, DashboardDay

    def page(period: str):
        def load() -> None:
            response = client.get(f"/admin/dashboard/?period={period}")
            assert response.status_code == 200, response.status_code

        return load

    DashboardDay.objects.all().delete()
    rows = [
        {
            "view": "dashboard, 30 days, before any rollup",
            "s": timed(lambda: statistics.dashboard("30d"), repeat),
            "page_s": timed(page("30d"), repeat),
        }
    ]
    began = time.perf_counter()
    rollup.refresh()
    rows.append(
        {
            "view": f"the hourly rollup ({DashboardCount.objects.count():,} counts kept)",
            "s": time.perf_counter() - began,
        }
    )
    for period, label in (("today", "today"), ("7d", "7 days"), ("30d", "30 days")):
        rows.append(
            {
                "view": f"dashboard, {label}, after the rollup",
                "s": timed(lambda period=period: statistics.dashboard(period), repeat),
                "page_s": timed(page(period), repeat),
            }
        )
    return rows


def sample(url: str) -> tuple[str, str, int, int]:
    """A user's username and email, an id 123,456 from the newest, a middle campaign."""
    with psycopg.connect(url) as conn:
        username, email = conn.execute(
            "SELECT username, email FROM auth_user WHERE username LIKE 'ann.smith%' "
            "ORDER BY id LIMIT 1"
        ).fetchone()
        newest, campaign = conn.execute(
            "SELECT max(id), (SELECT min(id) + 3 FROM notifications_campaign) "
            "FROM notifications_notification"
        ).fetchone()
    return username, email, newest - 123_456, campaign


def admin_list(client, url: str, repeat: int) -> list[dict[str, Any]]:
    username, email, some_id, campaign = sample(url)
    first = client.get(CHANGELIST).text
    last_page = max(int(p) for p in re.findall(r'href="\?p=(\d+)"', first))
    cases = [
        ("first page", {}),
        ("search: a rare word of the messages (chargeback)", {"q": "chargeback"}),
        ("search: a common word (refund, 1 in 6)", {"q": "refund"}),
        (f"search: a username ({username})", {"q": username}),
        ("search: an email", {"q": email}),
        ("search: an id", {"q": str(some_id)}),
        (f"the last page offered (page {last_page:,})", {"p": last_page}),
        ("one campaign (~50,000 notifications)", {"campaign__id__exact": campaign}),
    ]
    rows = []
    for label, params in cases:

        def load(params=params) -> None:
            response = client.get(CHANGELIST, params)
            assert response.status_code == 200, (params, response.status_code)

        rows.append({"view": f"admin list, {label}", "page_s": timed(load, repeat)})
    return rows


def slot_writes(url: str) -> int:
    """Rows the throttle's schedule has had written (PostgreSQL's statistics)."""
    time.sleep(11)  # an idle connection's statistics reach the view within ten seconds
    with psycopg.connect(url) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables "
            "WHERE relname = 'notifications_ratelimitslot'"
        ).fetchone()
    return row[0] if row else 0


def api_list(url: str, queue: str, key: str, username: str, requests_each: int) -> list[dict]:
    server = Server(service_env(url, queue))
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    try:
        written = slot_writes(url)
        base = f"{server.url}/notifications?limit=50"
        deep = base
        for _ in range(199):
            deep = session.get(deep, timeout=60).json()["next"]
        asked = 199
        now = datetime.now(UTC)

        def stamp(moment: datetime) -> str:
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

        cases = [
            ("first page", base),
            ("page 200 (following next)", deep),
            (
                "created_before a week ago",
                f"{base}&created_before={stamp(now - timedelta(days=7))}",
            ),
            (
                "one day, 10 days ago (created_after and created_before)",
                f"{base}&created_after={stamp(now - timedelta(days=10))}"
                f"&created_before={stamp(now - timedelta(days=9))}",
            ),
            (f"user={username}", f"{base}&user={username}"),
            ("status=undelivered (2 %)", f"{base}&status=undelivered"),
            ("channel=email", f"{base}&channel=email"),
        ]
        rows = []
        for label, case_url in cases:
            session.get(case_url, timeout=60).raise_for_status()
            times = []
            for _ in range(requests_each):
                began = time.perf_counter()
                response = session.get(case_url, timeout=60)
                times.append(time.perf_counter() - began)
                response.raise_for_status()
            asked += requests_each + 1
            rows.append(
                {
                    "query": label,
                    "p50_ms": statistics.median(times) * 1000,
                    "p95_ms": percentile(times, 0.95) * 1000,
                }
            )
        per_get = (slot_writes(url) - written) / asked
        for row in rows:
            row["writes"] = per_get
        return rows
    finally:
        server.stop()


def prepare(url: str, rows: int, keep: bool) -> tuple[dict[str, int], str]:
    """The database filled (afresh unless ``keep``); its counts and an API key."""
    env = service_env(url, url)
    if not keep:
        fresh(url)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, env=env, check=True
        )
        counts = million.fill(url, rows)
    else:
        with psycopg.connect(url) as conn:
            counts = {
                "notifications": conn.execute(
                    "SELECT count(*) FROM notifications_notification"
                ).fetchone()[0],
                "attempts": conn.execute(
                    "SELECT count(*) FROM notifications_deliveryattempt"
                ).fetchone()[0],
            }
    key = subprocess.run(
        [sys.executable, "manage.py", "create_api_key", "bench"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return counts, key


def report(counts: dict[str, int], views: list[dict], api: dict[str, list[dict]]) -> str:
    def seconds(value: float | None) -> str:
        return "" if value is None else f"{value:.3f}"

    lines = [
        f"PostgreSQL, {counts['notifications']:,} notifications over 35 days, "
        f"{counts['attempts']:,} attempts; run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| operator's view | queries (s) | whole page (s) |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {r['view']} | {seconds(r.get('s'))} | {seconds(r.get('page_s'))} |" for r in views
    ]
    for tier, rows in api.items():
        lines += [
            "",
            f"| API list, 50 a page, {tier} | p50 (ms) | p95 (ms) | throttle rows written per GET |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {r['query']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['writes']:.2f} |"
            for r in rows
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--redis", default=REDIS_URL, help="Redis for the scale-out tier")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each view")
    parser.add_argument("--requests", type=int, default=30, help="API requests per case")
    parser.add_argument("--keep", action="store_true", help="reuse the database as it is")
    options = parser.parse_args()
    url = options.database_url

    counts, key = prepare(url, options.rows, options.keep)
    os.environ.update(service_env(url, url))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    User = get_user_model()
    admin = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "bench-admin@example.com", "pw"
    )
    client = Client()
    client.force_login(admin)
    print("dashboard and admin list:", flush=True)
    views = dashboard(client, options.repeat) + admin_list(client, url, options.repeat)
    username = sample(url)[0]
    from django.db import connections

    connections.close_all()
    api = {}
    for tier, queue in (("database tier", url), ("with Redis", options.redis)):
        print(f"API list, {tier}:", flush=True)
        if queue.startswith("redis"):
            redis.Redis.from_url(queue).flushdb()
        api[tier] = api_list(url, queue, key, username, options.requests)
    text = report(counts, views, api)
    print()
    print(text)


if __name__ == "__main__":
    main()
