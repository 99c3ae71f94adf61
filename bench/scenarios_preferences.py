"""The scenarios of "recipients in control" (``notifications.preferences``): what one claim
costs in queries when the batch's preferences are loaded, and the throughput at 32 threads
when every notification goes through the policy step (a capped category, quiet hours, a
channel the recipient turned off).

Registered in ``bench.scenarios.SCENARIOS`` as the others are (``bench/run.py`` imports this
module), and run after them. Each sets up categories, preferences, time zones and quiet hours
for the users it uses (``recipients_in_control``) and undoes it at the end, so what runs after
sees the users as they were.

``BENCH_BEFORE=FILE``: the 32-thread ``throughput`` of another checkout (the code before this
capability), shown beside ``throughput_preferences``. FILE is what ``BENCH_PROFILE=32 python
bench/run.py`` printed there (its ``<tier> {json}`` lines), or its ``bench/results/results.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.harness import PROFILE_THREADS, QUICK, TIER_LABEL
from bench.scenarios import FAST, N, Result, _say, scenario
from bench.workbench import Bench

# Ten IANA zones, from UTC-8 to UTC+10, recipients spread over them in turn.
ZONES = (
    "America/Los_Angeles",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Moscow",
    "Asia/Yekaterinburg",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
)
CHANNELS = ("telegram", "email", "sms")
CAP = 100  # a day (and an hour) per user: far above the one notification each gets here
CLAIM_SIZES = (1, 10, 100, 1000)
CLAIM_REPEATS = 3
PREFS_THREADS = PROFILE_THREADS or 32
PREFS_REPEATS = 1 if QUICK else 3
# The chain of the preference runs: Email first, which every other recipient turned off for
# the category (the policy skips it, by their choice) and the others have no address for (a
# Telegram-only user): every notification skips one channel, then goes by Telegram.
CHAIN = ["email", "telegram"]
BEFORE = os.environ.get("BENCH_BEFORE", "")


# --- the setting: categories, preferences, zones and quiet hours --------------------------------
def _not_now(zone: str, now: datetime) -> str:
    """Quiet hours in ``zone`` that do not hold ``now`` (from four to six hours later)."""
    local = now.astimezone(ZoneInfo(zone))
    return f"{local + timedelta(hours=4):%H:%M}-{local + timedelta(hours=6):%H:%M}"


@contextmanager
def recipients_in_control(bench: Bench, users: Sequence[Any]) -> Iterator[list[Any]]:
    """Three categories, none required: *orders* capped at CAP a day (in the user's zone),
    *offers* capped at CAP an hour (skipped over it) and *news*; and for each of ``users`` a
    time zone of ZONES, quiet hours that are not now, and a Preference per category and
    channel (nine rows), with Email turned off for *orders* by every other user and SMS off
    for *offers* by all. Yields the categories; at the exit deletes every notification (they
    refer to the categories), the categories with their preferences and cap counts, and
    the users' zones and quiet hours."""
    from django.utils import timezone

    from notifications.models import UserContact
    from notifications.preferences.models import Category, Preference

    day, hour = timedelta(days=1), timedelta(hours=1)
    categories = [
        Category.objects.create(
            key="bench-orders", name_en="Bench orders", cap_count=CAP, cap_window=day
        ),
        Category.objects.create(
            key="bench-offers",
            name_en="Bench offers",
            cap_count=CAP,
            cap_window=hour,
            over_cap=Category.OverCap.SKIP,
        ),
        Category.objects.create(key="bench-news", name_en="Bench news"),
    ]
    try:
        now = timezone.now()
        for k, zone in enumerate(ZONES):
            UserContact.objects.filter(user__in=users[k :: len(ZONES)]).update(
                timezone=zone, quiet_hours=_not_now(zone, now)
            )
        Preference.objects.bulk_create(
            [
                Preference(
                    user=user,
                    category=category,
                    channel=channel,
                    enabled=not (
                        (category is categories[0] and channel == "email" and i % 2 == 0)
                        or (category is categories[1] and channel == "sms")
                    ),
                )
                for i, user in enumerate(users)
                for category in categories
                for channel in CHANNELS
            ],
            batch_size=2000,
        )
        yield categories
    finally:
        bench.fresh([])  # the notifications refer to the categories
        Category.objects.filter(pk__in=[c.pk for c in categories]).delete()
        UserContact.objects.filter(user__in=users).update(timezone="", quiet_hours="")


# --- the claim's queries ------------------------------------------------------------------------
@scenario("sqlite", "pg")
def claim_queries(bench: Bench) -> Result:
    """Queries of one claim (`delivery.claim`, as the consumer's task calls it) of 1 … 1,000
    queued notifications whose users have preferences, zones and quiet hours."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from notifications import delivery
    from notifications.models import Notification
    from notifications.preferences import policy

    users = bench.telegram_users[: max(CLAIM_SIZES)]
    sizes: Result = {}
    sql: list[str] = []
    with recipients_in_control(bench, users) as categories:
        for size in CLAIM_SIZES:
            ids = bench.fresh(users[:size], "queued")
            # A quarter in each category of ours, a quarter in none (the default, general).
            for k, category in enumerate(categories):
                Notification.objects.filter(pk__in=ids[k::4]).update(category=category)
            runs = []
            for _ in range(CLAIM_REPEATS):
                now = timezone.now()
                Notification.objects.filter(pk__in=ids).update(
                    status=Notification.Status.QUEUED,
                    next_attempt_at=now,
                    lease_expires_at=None,
                    rounds=0,
                )
                policy.cached_default()  # a running consumer's: read once per 30 s at most
                with CaptureQueriesContext(connection) as captured:
                    began = time.perf_counter()
                    jobs = delivery.claim(ids)
                    runs.append((time.perf_counter() - began) * 1000)
                if len(jobs) != size:
                    raise RuntimeError(f"claimed {len(jobs)} of {size}")
            queries = [q["sql"] for q in captured.captured_queries]
            sizes[str(size)] = {"queries": len(queries), "ms": round(statistics.median(runs), 1)}
            sql = sql or [" ".join(q.split())[:100] for q in queries]
            _say(bench, f"claim {size}", sizes[str(size)])
    row = {"sizes": sizes, "sql": sql, "zones": len(ZONES), "preferences_per_user": 9}
    _say(bench, "claim_queries", {"queries": [v["queries"] for v in sizes.values()]})
    return row


# --- throughput with preferences ----------------------------------------------------------------
def _send(bench: Bench, users: Sequence[Any], category: Any = None, chain: bool = False) -> Result:
    """One bulk action on a notification for each of ``users`` (in ``category``, through
    CHAIN when ``chain``), PREFS_THREADS threads, until the last is sent."""
    from notifications.models import DeliveryAttempt, Notification
    from notifications.preferences.models import CapCount

    ids = bench.fresh(users)
    if category is not None or chain:
        Notification.objects.filter(pk__in=ids).update(
            category=category, channels=CHAIN if chain else []
        )
    CapCount.objects.all().delete()  # each send the first of its user's day, as in one run
    bench.telegram.reset()
    run = bench.click_and_wait(ids, [bench.consumer(PREFS_THREADS, **FAST)], 600)
    row = {**bench.timings(ids, run.started), **run.cpu.per_item_ms(len(ids))}
    row["duplicates"] = bench.telegram.stats()["messages"] - len(ids)
    row["by_telegram"] = bench.channels(ids).get("telegram", 0)
    attempts = DeliveryAttempt.objects.filter(notification_id__in=ids, channel="email")
    row["skipped_by_choice"] = attempts.filter(error__startswith="turned off").count()
    row["cap_slots"] = sum(CapCount.objects.values_list("count", flat=True))
    return row


def _median(runs: list[Result]) -> Result:
    """Each number the median of ``runs``; the runs themselves under ``runs``."""
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    row: Result = {k: round(statistics.median(r[k] for r in runs), 2) for k in keys}
    return {**row, "runs": [r["rate"] for r in runs]}


def _before(tier: str, threads: int) -> Result | None:
    """The ``throughput`` row of ``threads`` on ``tier`` in BENCH_BEFORE, if it has one."""
    if not BEFORE:
        return None
    text = Path(BEFORE).read_text()
    try:
        saved = json.loads(text)  # a results.json
        tiers = saved.get("tiers", saved)
    except json.JSONDecodeError:  # BENCH_PROFILE's printout: a "<tier> {json}" line per tier
        tiers = {}
        for line in text.splitlines():
            name, _, rest = line.partition(" ")
            if name in TIER_LABEL and rest.startswith("{"):
                tiers[name] = json.loads(rest)
    row = ((tiers.get(tier) or {}).get("throughput") or {}).get(str(threads))
    return {**row, "source": BEFORE} if isinstance(row, dict) and "rate" in row else None


@scenario("sqlite", "pg")
def throughput_preferences(bench: Bench) -> Result:
    """Throughput at 32 threads with every recipient's preferences, zone, quiet hours and a
    cap in the way, against the same without (and against BENCH_BEFORE's, if given)."""
    users = bench.telegram_users[:N]
    runs: dict[str, list[Result]] = {"plain": [], "chain": [], "preferences": [], "uncapped": []}
    for _ in range(PREFS_REPEATS):  # interleaved, so a change of the machine's load hits all
        runs["plain"].append(_send(bench, users))
        _say(bench, f"{PREFS_THREADS} threads, plain", runs["plain"][-1])
        runs["chain"].append(_send(bench, users, chain=True))
        _say(bench, f"{PREFS_THREADS} threads, email→telegram chain", runs["chain"][-1])
        with recipients_in_control(bench, users) as categories:
            runs["preferences"].append(_send(bench, users, categories[0], chain=True))
        _say(bench, f"{PREFS_THREADS} threads, preferences", runs["preferences"][-1])
        with recipients_in_control(bench, users) as categories:  # "news": no cap
            runs["uncapped"].append(_send(bench, users, categories[2], chain=True))
        _say(bench, f"{PREFS_THREADS} threads, preferences, no cap", runs["uncapped"][-1])
    row: Result = {
        "threads": PREFS_THREADS,
        "repeats": PREFS_REPEATS,
        **{name: _median(rows) for name, rows in runs.items()},
    }
    before = _before(bench.tier.name, PREFS_THREADS)
    if before:
        row["before"] = before
    today = before or row["plain"]
    row["share_of_plain"] = round(row["preferences"]["rate"] / row["plain"]["rate"], 3)
    row["share_of_today"] = round(row["preferences"]["rate"] / today["rate"], 3)
    row["uncapped_share_of_today"] = round(row["uncapped"]["rate"] / today["rate"], 3)
    row["today_is_before"] = bool(before)
    _say(bench, "throughput_preferences", row)
    return row
