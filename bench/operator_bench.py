"""The operator's admin, measured (not bench/operator.py: a file of that name beside the other
bench scripts would stand in for the standard library's ``operator`` and break them): a campaign's creation for 50,000 recipients, and the
dashboard at 1,000,000 notifications.

    .venv/bin/python bench/operator_bench.py            # both tiers; prints a markdown table
    .venv/bin/python bench/operator_bench.py --tier sqlite --recipients 5000

Each tier runs in a process of its own on a database of its own, made afresh and dropped at
the end: SQLite (a temporary file, SqliteHuey) and PostgreSQL
(``postgres://postgres@127.0.0.1:5432/notify_bench_operator``, PostgresHuey in the same
database; ``--pg`` changes the server). Nothing is sent: the campaign is created and its
doorbells rung, as the consumer's ``campaign_fill`` task does it, and timed from the
operator's click (``services.campaign_create``) to the last notification created.

The dashboard rows are made by SQL (``generate_series``) over the last 30 days: statuses and
channels in realistic shares, one attempt per notification plus failed ones, SMS with parts
and cost. ``selectors.dashboard`` and the whole page (logged in, through Django's test client)
are timed warm, the median of five, for today, 7 and 30 days, at 22:00–23:00 local time
(a ``TIME_ZONE`` is chosen for it: the end of a day is the dashboard's worst case), after the hourly rollup of
past days (``notifications.rollup``) has run; the rollup itself, and 30 days before it first
ran (every row scanned), are timed once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
PG_SERVER = "postgres://postgres@127.0.0.1:5432"
PG_NAME = "notify_bench_operator"


def late_evening_zone() -> str:
    """A time zone where it is now 22:00–23:00: the dashboard reads today and yesterday live,
    so its worst case is at the end of a day (``Etc/GMT-3`` is UTC+3)."""
    offset = (22 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "UTC"


def setup(database_url: str, queue_url: str, work: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="notification_service.settings",
        NOTIFY_SKIP_DOTENV="1",
        NOTIFY_VAR_DIR=str(work),
        DATABASE_URL=database_url,
        QUEUE_URL=queue_url,
        DJANGO_SECRET_KEY="bench",
        LOG_LEVEL="WARNING",
        DJANGO_ALLOWED_HOSTS="testserver,127.0.0.1",
        TIME_ZONE=late_evening_zone(),
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def make_users(count: int) -> None:
    """``count`` users with an email, and their contacts, in bulk."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from notifications.models import UserContact

    User = get_user_model()
    for start in range(0, count, 5000):
        with transaction.atomic():
            users = User.objects.bulk_create(
                User(username=f"user{n}", first_name=f"Имя{n % 97}", email=f"user{n}@example.com")
                for n in range(start, min(start + 5000, count))
            )
            UserContact.objects.bulk_create(
                UserContact(user=u, language="ru" if u.pk % 3 else "en") for u in users
            )


def campaign_run(admin, template=None) -> dict:
    """One campaign to every user but the admin (the whole users list filtered), timed."""
    from django.contrib.auth import get_user_model

    from notifications import services, tasks
    from notifications.models import Campaign

    everyone = get_user_model().objects.filter(is_staff=False)
    started = time.perf_counter()
    campaign = services.campaign_create(
        created_by=admin,
        audience_query="is_staff__exact=0",
        audience_size=everyone.count(),
        sample=everyone.order_by("pk").first(),
        message="" if template else "Плановые работы сегодня с 02:00 до 03:00.",
        subject="" if template else "Плановые работы",
        template=template,
        context={"start": "02:00"} if template else None,
    )
    tasks.campaign_fill.call_local(campaign.pk)
    took = time.perf_counter() - started
    campaign = Campaign.objects.get(pk=campaign.pk)
    assert campaign.state == Campaign.State.READY, campaign.error
    return {"recipients": campaign.recipients, "seconds": took}


def bench_campaign(recipients: int) -> list[dict]:
    from django.contrib.auth import get_user_model
    from huey.contrib.djhuey import HUEY

    from notifications.models import Notification, Template

    admin = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    make_users(recipients)
    template = Template.objects.create(
        key="maintenance",
        name="Maintenance",
        telegram_text_ru="{{ first_name }}, работы с <b>{{ start }}</b>",
        email_subject_ru="Плановые работы",
        email_text_ru="{{ first_name }}, плановые работы с {{ start }}.",
        sms_text_ru="Работы с {{ start }}",
        telegram_text_en="{{ first_name }}, maintenance from <b>{{ start }}</b>",
        email_subject_en="Maintenance",
        email_text_en="{{ first_name }}, maintenance from {{ start }}.",
        sms_text_en="Maintenance from {{ start }}",
    )
    rows = []
    for label, chosen in (("message", None), ("template, per-user variable", template)):
        HUEY.flush()
        result = campaign_run(admin, chosen)
        rows.append({"kind": label, **result, "queued": HUEY.pending_count()})
        Notification.objects.all().delete()
    HUEY.flush()
    return rows


DASHBOARD_SQL = """
INSERT INTO notifications_notification
  (user_id, subject, message, status, channel, created_at, queued_at, sent_at, next_attempt_at,
   rounds, last_error, channels, progress, rendered)
SELECT %(user)s, '', 'Bench notification ' || n,
  CASE WHEN n %% 100 < 80 THEN 'sent' WHEN n %% 100 < 88 THEN 'delivered'
       WHEN n %% 100 < 90 THEN 'undelivered' WHEN n %% 100 < 96 THEN 'failed'
       WHEN n %% 100 < 98 THEN 'cancelled' ELSE 'queued' END,
  CASE WHEN n %% 100 >= 90 THEN '' WHEN n %% 10 < 6 THEN 'telegram' WHEN n %% 10 < 9 THEN 'email'
       ELSE 'sms' END,
  now() - (n * interval '30 days' / %(rows)s),
  now() - (n * interval '30 days' / %(rows)s),
  CASE WHEN n %% 100 < 90 THEN now() - (n * interval '30 days' / %(rows)s)
       + ((n %% 50) * interval '200 milliseconds') END,
  CASE WHEN n %% 100 >= 98 THEN now() - (n * interval '30 days' / %(rows)s) END,
  1, '', '[]', '{}', '{}'
FROM generate_series(1, %(rows)s) AS n
"""
ATTEMPTS_SQL = """
INSERT INTO notifications_deliveryattempt
  (notification_id, round, channel, transport, outcome, error, provider_message_id, started_at,
   duration_ms, cost, segments, receipt_status, receipt_error)
SELECT id, 1, CASE WHEN channel = '' THEN 'telegram' ELSE channel END,
  CASE WHEN channel = 'sms' THEN 'smsaero' WHEN channel = '' THEN 'telegram' ELSE channel END,
  CASE WHEN status IN ('sent', 'delivered', 'undelivered') THEN 'success'
       WHEN status = 'failed' THEN 'permanent' ELSE 'skipped' END,
  CASE WHEN status = 'failed' THEN
    (ARRAY['Telegram 403: Forbidden: bot was blocked by the user',
           'Telegram 400: Bad Request: chat not found',
           'SMTP 550: mailbox unavailable'])[1 + id %% 3] ELSE '' END,
  '', created_at, 120,
  CASE WHEN channel = 'sms' THEN 4.95 * (1 + id %% 2) END,
  CASE WHEN channel = 'sms' THEN 1 + id %% 2 END,
  CASE WHEN status = 'delivered' THEN 'delivered' WHEN status = 'undelivered' THEN 'undelivered'
       ELSE '' END,
  CASE WHEN status = 'undelivered' THEN 'status 2' ELSE '' END
FROM notifications_notification;
INSERT INTO notifications_deliveryattempt
  (notification_id, round, channel, transport, outcome, error, provider_message_id, started_at,
   duration_ms, receipt_status, receipt_error)
SELECT id, 1, 'telegram', 'telegram', 'permanent',
  'Telegram 403: Forbidden: bot was blocked by the user', '', created_at, 80, '', ''

FROM notifications_notification WHERE channel IN ('email', 'sms') AND id %% 4 = 0;
"""


def bench_dashboard(rows: int) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from notifications import rollup, selectors

    admin = get_user_model().objects.create_superuser("dash", "dash@example.com", "pw")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(DASHBOARD_SQL, {"rows": rows, "user": admin.pk})
        for statement in ATTEMPTS_SQL.split(";"):
            if statement.strip():
                cursor.execute(statement.replace("%%", "%"))
        cursor.execute("ANALYZE")
    print(f"  {rows:,} notifications made in {time.perf_counter() - started:.0f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM notifications_deliveryattempt")
        attempts = cursor.fetchone()[0]
    client = Client()
    client.force_login(admin)
    # Before the hourly rollup has run: every row of 30 days scanned (once).
    t0 = time.perf_counter()
    selectors.dashboard("30d")
    unrolled = time.perf_counter() - t0
    t0 = time.perf_counter()
    refreshed = rollup.refresh()
    refresh_s = time.perf_counter() - t0
    print(
        f"  30d with no rollup {unrolled:.2f} s; rollup of {refreshed['days']} days "
        f"({refreshed['counts']:,} counts) {refresh_s:.2f} s",
        flush=True,
    )
    results = [
        {
            "period": "30d, before the first rollup",
            "rows": rows,
            "attempts": attempts,
            "selector_s": unrolled,
            "page_s": None,
            "queries": "",
        },
        {
            "period": "the rollup itself (hourly task)",
            "rows": rows,
            "attempts": attempts,
            "selector_s": refresh_s,
            "page_s": None,
            "queries": "",
        },
    ]
    for period in selectors.PERIODS:
        selectors.dashboard(period)  # warm
        timings = []
        for _ in range(5):
            t0 = time.perf_counter()
            selectors.dashboard(period)
            timings.append(time.perf_counter() - t0)
        pages = []
        for _ in range(5):
            reset_queries()
            with CaptureQueriesContext(connection) as queries:
                t0 = time.perf_counter()
                response = client.get(f"/admin/dashboard/?period={period}")
                pages.append(time.perf_counter() - t0)
            assert response.status_code == 200
        aggregate = [
            q for q in queries.captured_queries if "notifications_" in q["sql"]
        ]  # the dashboard's own, not the session's
        results.append(
            {
                "period": period,
                "rows": rows,
                "attempts": attempts,
                "selector_s": statistics.median(timings),
                "page_s": statistics.median(pages),
                "queries": len(aggregate),
            }
        )
    return results


def run_tier(tier: str, recipients: int, rows: int, pg: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"notify-bench-operator-{tier}-"))
    if tier == "sqlite":
        setup(f"sqlite:///{work / 'db.sqlite3'}", f"sqlite:///{work / 'huey.sqlite3'}", work)
    else:
        subprocess.run(
            ["psql", f"{pg}/postgres", "-qc", f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)"],
            check=True,
        )
        subprocess.run(["psql", f"{pg}/postgres", "-qc", f"CREATE DATABASE {PG_NAME}"], check=True)
        setup(f"{pg}/{PG_NAME}", f"{pg}/{PG_NAME}", work)
    try:
        result = {"tier": tier, "campaign": bench_campaign(recipients)}
        if tier == "postgresql" and rows:
            result["dashboard"] = bench_dashboard(rows)
        return result
    finally:
        from django.db import connections

        connections.close_all()
        if tier == "postgresql":
            subprocess.run(
                [
                    "psql",
                    f"{pg}/postgres",
                    "-qc",
                    f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)",
                ],
                check=False,
            )


def table(results: list[dict]) -> str:
    lines = [
        "| tier | campaign | recipients | creation (s) | recipients/s | doorbells queued |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for result in results:
        for row in result["campaign"]:
            lines.append(
                f"| {result['tier']} | {row['kind']} | {row['recipients']:,} | "
                f"{row['seconds']:.1f} | {row['recipients'] / row['seconds']:,.0f} | {row['queued']:,} |"
            )
    dashboards = [row for result in results for row in result.get("dashboard", [])]
    if dashboards:
        lines += [
            "",
            "| tier | period | notifications | attempts | dashboard queries (s) | whole page (s) | queries |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for row in dashboards:
            lines.append(
                f"| postgresql | {row['period']} | {row['rows']:,} | {row['attempts']:,} | "
                f"{row['selector_s']:.3f} | "
                + ("—" if row["page_s"] is None else f"{row['page_s']:.3f}")
                + f" | {row['queries']} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tier", choices=["sqlite", "postgresql"])
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--rows", type=int, default=1_000_000, help="dashboard notifications")
    parser.add_argument("--pg", default=PG_SERVER, help="PostgreSQL server URL (no database)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tier:
        result = run_tier(args.tier, args.recipients, args.rows, args.pg)
        print("RESULT " + json.dumps(result))
        return
    results = []
    for tier in ("sqlite", "postgresql"):
        print(f"{tier}:", flush=True)
        command = [sys.executable, __file__, "--tier", tier, "--recipients", str(args.recipients)]
        command += ["--rows", str(args.rows), "--pg", args.pg]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        print(
            "\n".join(line for line in done.stdout.splitlines() if not line.startswith("RESULT "))
        )
        if done.returncode or not lines:
            sys.exit(f"the {tier} run failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(lines[-1].removeprefix("RESULT ")))
    print(table(results))


if __name__ == "__main__":
    main()
