"""The operator's admin, measured (not bench/operator.py: a file of that name beside the other
bench scripts would stand in for the standard library's ``operator`` and break them): a
campaign's creation for 50,000 recipients. (The dashboard, the admin's list and the API's list
at a million notifications: ``bench/operator_million.py``.)

    .venv/bin/python bench/operator_bench.py            # both tiers; prints a markdown table
    .venv/bin/python bench/operator_bench.py --tier sqlite --recipients 5000
    .venv/bin/python bench/operator_bench.py --repeats 3   # each campaign's median of three

Each tier runs in a process of its own on a database of its own, made afresh and dropped at
the end: SQLite (a temporary file, SqliteHuey) and PostgreSQL
(``postgres://postgres@127.0.0.1:5432/notify_bench_operator``, PostgresHuey in the same
database; ``--pg`` changes the server). Nothing is sent: the campaign is created and its
doorbells rung, as the consumer's ``campaign_fill`` task does it, and timed from the
operator's click (``services.campaign_create``) to the last notification created.

Three campaigns, to every recipient each: a message; a template with a per-user variable;
and a message in a category sent at a local time (``local_send_at``: 10:00 tomorrow in each
recipient's zone, tomorrow by the zone furthest ahead), after every recipient was given a time
zone (ten IANA zones in turn, ``bench.scenarios_preferences.ZONES``) and four Preference rows
(Email on and Telegram and SMS off for the campaign's category, Email off for another): its
time is printed against the plain message's.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.scenarios_preferences import ZONES  # noqa: E402 (the root is on the path from here)

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


def recipients_choose() -> list:
    """Every user but the admin gets a time zone of ZONES (in turn, by id) and four
    Preference rows: Email on, Telegram and SMS off for *maintenance*, Email off for
    *offers*. Returns the two categories (none required; *maintenance* capped)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.db.models.functions import Mod

    from notifications.models import UserContact
    from notifications.preferences.models import Category, Preference

    maintenance = Category.objects.create(
        key="bench-maintenance",
        name_en="Maintenance",
        cap_count=10,
        cap_window=timedelta(days=1),
    )
    offers = Category.objects.create(key="bench-offers", name_en="Offers")
    for k, zone in enumerate(ZONES):
        UserContact.objects.alias(slot=Mod("user_id", len(ZONES))).filter(slot=k).update(
            timezone=zone
        )
    choices = (
        (maintenance, "email", True),
        (maintenance, "telegram", False),
        (maintenance, "sms", False),
        (offers, "email", False),
    )
    ids = list(get_user_model().objects.filter(is_staff=False).values_list("pk", flat=True))
    for start in range(0, len(ids), 5000):
        with transaction.atomic():
            Preference.objects.bulk_create(
                Preference(user_id=pk, category=category, channel=channel, enabled=enabled)
                for pk in ids[start : start + 5000]
                for category, channel, enabled in choices
            )
    return [maintenance, offers]


def tomorrow_at_ten() -> str:
    """10:00 on the day after today in the zone of ZONES furthest ahead: in the future, and
    tomorrow or the day after, in every zone."""
    ahead = max(datetime.now(ZoneInfo(zone)).date() for zone in ZONES)
    return f"{ahead + timedelta(days=1):%Y-%m-%d}T10:00"


def campaign_run(admin, template=None, **options) -> dict:
    """One campaign to every user but the admin (the whole users list filtered), timed;
    ``options`` go to ``services.campaign_create`` (``local_send_at``, ``category``)."""
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
        **options,
    )
    tasks.campaign_fill.call_local(campaign.pk)
    took = time.perf_counter() - started
    campaign = Campaign.objects.get(pk=campaign.pk)
    assert campaign.state == Campaign.State.READY, campaign.error
    return {"recipients": campaign.recipients, "skipped": campaign.skipped, "seconds": took}


def bench_campaign(recipients: int, repeats: int = 1) -> list[dict]:
    from django.contrib.auth import get_user_model

    from notifications.models import Template

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
        rows.append(campaign_median(repeats, label, admin, chosen))
    maintenance, _ = recipients_choose()
    wall = tomorrow_at_ten()
    label = f"message, preferences, local time ({len(ZONES)} zones)"
    rows.append(campaign_median(repeats, label, admin, local_send_at=wall, category=maintenance))
    return rows


def campaign_median(repeats: int, label: str, admin, template=None, **options) -> dict:
    """``campaign_run`` ``repeats`` times, each from an empty queue, its notifications
    deleted after; the median time."""
    from huey.contrib.djhuey import HUEY

    from notifications.models import Notification

    runs = []
    for _ in range(repeats):
        HUEY.flush()
        runs.append({**campaign_run(admin, template, **options), "queued": HUEY.pending_count()})
        Notification.objects.all().delete()
        HUEY.flush()
    seconds = statistics.median(run["seconds"] for run in runs)
    kind = f"{label} (median of {repeats})" if repeats > 1 else label
    return {**runs[0], "kind": kind, "seconds": seconds, "runs": [r["seconds"] for r in runs]}


def run_tier(tier: str, recipients: int, pg: str, repeats: int = 1) -> dict:
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
        return {"tier": tier, "campaign": bench_campaign(recipients, repeats)}
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
        "| tier | campaign | recipients | creation (s) | recipients/s | time against message "
        "| doorbells queued |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        plain = result["campaign"][0]["seconds"]
        for row in result["campaign"]:
            against = (
                f"{row['seconds'] / plain - 1:+.0%}" if row is not result["campaign"][0] else ""
            )
            lines.append(
                f"| {result['tier']} | {row['kind']} | {row['recipients']:,} | "
                f"{row['seconds']:.1f} | {row['recipients'] / row['seconds']:,.0f} | {against} "
                f"| {row['queued']:,} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tier", choices=["sqlite", "postgresql"])
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each campaign (median)")
    parser.add_argument("--pg", default=PG_SERVER, help="PostgreSQL server URL (no database)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tier:
        result = run_tier(args.tier, args.recipients, args.pg, args.repeats)
        print("RESULT " + json.dumps(result))
        return
    results = []
    for tier in ("sqlite", "postgresql"):
        print(f"{tier}:", flush=True)
        command = [sys.executable, __file__, "--tier", tier, "--recipients", str(args.recipients)]
        command += ["--pg", args.pg, "--repeats", str(args.repeats)]
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
