"""``make bench-scale``: a campaign to a million users on PostgreSQL + Redis, while it is
created and sent, measured from outside as an operator and a host's monitoring see it
(issue 19, "A million-recipient campaign").

    .venv/bin/python bench/scale.py                        # 1,000,000 recipients (~10 min)
    .venv/bin/python bench/scale.py --recipients 20000 --send-seconds 10   # a quick check
    .venv/bin/python bench/scale.py --alone                # the creation alone, nothing sent

It needs PostgreSQL and Redis on this machine. Its database (``--pg``, default
``postgres://postgres@127.0.0.1:5432/notify_bench_scale``) is dropped, created, migrated,
and dropped again at the end; its Redis db (``--queue``, default ``redis://127.0.0.1:6379/13``)
is flushed before and after. ``--recipients`` users, each with a Telegram chat id, are made
by SQL (``generate_series``) and an operator superuser by the ORM. Then, all real processes on
127.0.0.1: the fake Telegram Bot API (answering in 50 ms, no limit of its own), one consumer
(``manage.py run_huey``, 32 threads; ``NOTIFY_WORKERS`` is set for it only), gunicorn as
``manage.py runservice`` starts it (2 workers × 4 threads), with ``NOTIFY_TELEGRAM_RATE=1000``:
the bot's shared pace is in the path but never binds.

The operator logs in to the admin over HTTP and sends one message to every user ("Send a
notification…" on the users list with "select all": ``audience_all``, an empty filter); the
consumer creates the campaign (``tasks.campaign_fill``) and sends it meanwhile. Every 2 s,
until ``--send-seconds`` (default 60) after its creation ended, it samples the resident memory
of the web's and the consumer's process trees (``/proc``) and times, logged in, the dashboard
(``/admin/dashboard/``) and the campaign's page. Then it presses "Cancel the rest" over HTTP
and times the last message the fake receives after the click, watched until none of the
campaign's notifications is left waiting (the consumer cancels the rest) or two minutes; the
pages are sampled on meanwhile.

Doorbells are counted in Redis: every message put in huey's queue is a ``ZADD`` to its sorted
set (a step's doorbells go in one pipeline, each still a ``ZADD``), and Redis reports each one (keyspace notifications, ``notify-keyspace-events`` set for the
run and restored after). Counted from the click to the campaign's ``created_all_at``: the
campaign's ``deliver`` doorbells, its one ``campaign_fill``, and the periodic tasks of those
minutes (a few a minute). Creation time is from the click to ``created_all_at`` (stamped as
the last chunk begins, so a chunk's time short of its commit; the notifications the campaign
then has are counted in the table).

It prints a markdown table and writes ``bench/results/scale.json`` (every sample too); the
web's and consumer's logs stay in ``var/bench/scale/``. Everything it starts it stops.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

from bench import million  # noqa: E402 (the project's root is on the path only from here)
from bench.harness import (  # noqa: E402
    RESULTS,
    TOKEN,
    WORK,
    TelegramFake,
    free_port,
    machine,
    percentile,
    process_tree,
    rss_kib,
    service_environ,
)
from bench.operator_bench import late_evening_zone  # noqa: E402
from notifications.tests.harness import Consumer  # noqa: E402

PG_URL = "postgres://postgres@127.0.0.1:5432/notify_bench_scale"
QUEUE_URL = "redis://127.0.0.1:6379/13"
THREADS = 32
TELEGRAM_RATE = "1000"  # messages/s the bot's shared pace allows: far above what is sent
OPERATOR, PASSWORD = "operator", "scale-bench-operator-password"
SAMPLE_EVERY = 2.0  # seconds between samples
QUIET = 2.0  # no message for this long after "Cancel the rest": sending stopped
HTTP_TIMEOUT = 30.0  # a page slower than this is recorded as this
WORK_DIR = WORK / "scale"

USERS_SQL = """
INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,
                       is_staff, is_active, date_joined)
SELECT '!', false, 'scale' || g, '', '', '', false, true, now()
FROM generate_series(1, %(users)s) AS g
"""

CONTACTS_SQL = """
INSERT INTO notifications_usercontact (user_id, telegram_chat_id, email, phone,
  telegram_opt_out, telegram_blocked, email_opt_out, sms_opt_out, language, updated_at)
SELECT u.id, (7000000 + u.id)::text, '', '', false, false, false, false, '', now()
FROM auth_user AS u
"""


# --- the stores ---------------------------------------------------------------------------------


def recreate_database(url: str, *, create: bool = True) -> None:
    """Drop the database of ``url`` (and make it afresh unless ``create`` is false)."""
    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def fill_users(url: str, count: int) -> float:
    """``count`` users with a contact holding a Telegram chat id, by SQL; seconds taken."""
    began = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute(million.completed(conn, USERS_SQL), {"users": count})
        conn.execute(million.completed(conn, CONTACTS_SQL))
        conn.execute("VACUUM ANALYZE auth_user, notifications_usercontact")
    return time.perf_counter() - began


class DoorbellCounter:
    """Messages put in huey's queue (``ZADD``s to ``huey.redis.*`` in the Redis db of
    ``url``), counted from Redis keyspace notifications in a thread of this process."""

    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.db = self.redis.connection_pool.connection_kwargs.get("db", 0)
        self.count = 0
        self._saved: str | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DoorbellCounter:
        self._saved = self.redis.config_get("notify-keyspace-events")["notify-keyspace-events"]
        self.redis.config_set("notify-keyspace-events", f"{self._saved}Kz")
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(f"__keyspace@{self.db}__:huey.redis.*")
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        return self

    def _listen(self) -> None:
        while not self._stopping.is_set():
            message = self._pubsub.get_message(timeout=0.5)
            if message and message["data"] == "zadd":
                self.count += 1

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping.set()
            self._thread.join(timeout=5)
            self._pubsub.close()
        if self._saved is not None:
            self.redis.config_set("notify-keyspace-events", self._saved)
            self._saved = None


# --- processes ----------------------------------------------------------------------------------


def tree_rss_mib(root: int) -> float:
    """Resident memory of ``root``'s process tree, summed, in MiB."""
    total = 0
    for pid in process_tree(root):
        try:
            total += rss_kib(pid)[0]
        except OSError:
            pass  # it ended between the listing and the reading
    return round(total / 1024, 1)


class Web:
    """gunicorn as ``manage.py runservice`` starts it, on 127.0.0.1, logging to ``log``."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "notification_service.wsgi",
                "--bind", self.url.removeprefix("http://"), "--workers", "2", "--threads", "4",
                "--graceful-timeout", "10",
            ],
            cwd=BASE_DIR, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> Web:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(f"{self.url}/admin/login/", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


# --- the operator, over HTTP --------------------------------------------------------------------


class Operator:
    """A browser logged in to the admin at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def login(self, username: str, password: str) -> None:
        page = self.session.get(f"{self.url}/admin/login/", timeout=HTTP_TIMEOUT)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        answer = self.session.post(
            f"{self.url}/admin/login/?next=/admin/",
            data={"csrfmiddlewaretoken": token, "username": username, "password": password},
            headers={"Referer": f"{self.url}/admin/login/"},
            timeout=HTTP_TIMEOUT,
        )
        if answer.status_code != 200 or "/admin/login/" in answer.url:
            raise RuntimeError(f"the operator could not log in: {answer.status_code}")

    def post(self, path: str, data: dict[str, Any], timeout: float) -> requests.Response:
        """A form posted as the browser does (its CSRF token, no redirect followed)."""
        return self.session.post(
            self.url + path,
            data={"csrfmiddlewaretoken": self.session.cookies.get("csrftoken", ""), **data},
            headers={"Referer": self.url + path},
            timeout=timeout,
            allow_redirects=False,
        )

    def timed_get(self, path: str) -> float:
        """Seconds ``path`` takes to answer 200 (``HTTP_TIMEOUT`` when slower or failing)."""
        began = time.perf_counter()
        try:
            answer = self.session.get(self.url + path, timeout=HTTP_TIMEOUT)
            answer.raise_for_status()
        except requests.RequestException as err:
            print(f"  GET {path} failed: {err}", flush=True)
            return HTTP_TIMEOUT
        return round(time.perf_counter() - began, 3)

    def send_to_everyone(self, operator_id: int, message: str) -> int:
        """The users list's "Send a notification…", every user matching its (empty) filter
        selected, the message confirmed; returns the campaign's id."""
        answer = self.post(
            "/admin/auth/user/",
            {
                "action": "send_notification",
                "select_across": "1",
                "index": "0",
                "_selected_action": [str(operator_id)],
                "_compose": "1",
                "_send": "1",
                "name": "A million-recipient campaign",
                "message": message,
                "subject": "",
                "context": "",
                "send_at_0": "",
                "send_at_1": "",
            },
            timeout=120,
        )
        found = re.search(r"/campaign/(\d+)/", answer.headers.get("Location", ""))
        if answer.status_code != 302 or not found:
            raise RuntimeError(f"no campaign started: {answer.status_code} {answer.text[:500]}")
        return int(found.group(1))


# --- the run ------------------------------------------------------------------------------------


class Run:
    """The processes of one run, its samples, and what the operator sees."""

    def __init__(self, web: Web, consumer: Consumer, telegram: TelegramFake) -> None:
        self.web, self.consumer, self.telegram = web, consumer, telegram
        self.operator = Operator(web.url)
        self.began = time.monotonic()
        self.samples: list[dict[str, Any]] = []
        self.campaign_id: int | None = None

    def sent(self) -> int:
        return self.telegram.stats()["messages"]

    def sample(self, phase: str) -> dict[str, Any]:
        row = {
            "t": round(time.monotonic() - self.began, 1),
            "phase": phase,
            "web_mib": tree_rss_mib(self.web.process.pid),
            "consumer_mib": tree_rss_mib(self.consumer.pid),
            "sent": self.sent(),
            "dashboard_s": self.operator.timed_get("/admin/dashboard/"),
        }
        if self.campaign_id is not None:
            path = f"/admin/notifications/campaign/{self.campaign_id}/change/"
            row["campaign_page_s"] = self.operator.timed_get(path)
        self.samples.append(row)
        return row

    def campaign(self) -> dict[str, Any]:
        from notifications.models import Campaign

        return Campaign.objects.values(
            "state", "recipients", "skipped", "created_all_at", "error"
        ).get(pk=self.campaign_id)

    def create(self, operator_id: int, limit: float) -> dict[str, Any]:
        """Click, then sample until the campaign is created (or ``limit`` seconds)."""
        clicked_at, clicked = datetime.now(UTC), time.monotonic()
        self.campaign_id = self.operator.send_to_everyone(
            operator_id, "Плановые работы сегодня с 02:00 до 03:00."
        )
        answered = time.monotonic() - clicked
        print(f"clicked: campaign {self.campaign_id}, answered in {answered:.2f} s", flush=True)
        state = self.campaign()
        while state["state"] == "creating" and time.monotonic() - clicked < limit:
            row = self.sample("creating")
            state = self.campaign()
            if len(self.samples) % 5 == 0:
                print(
                    f"  {row['t']:6.0f} s  {state['recipients']:>9,} created  "
                    f"{row['sent']:>8,} sent  web {row['web_mib']:.0f} MiB  "
                    f"consumer {row['consumer_mib']:.0f} MiB  dashboard "
                    f"{row['dashboard_s']:.2f} s  campaign page {row['campaign_page_s']:.2f} s",
                    flush=True,
                )
            if state["state"] == "creating":
                self.pause(row)
                state = self.campaign()
        done = state["created_all_at"]
        return {
            "state": state["state"],
            "error": state["error"],
            "recipients": state["recipients"],
            "skipped": state["skipped"],
            "click_answered_s": round(answered, 2),
            "seconds": round((done - clicked_at).total_seconds(), 1) if done else None,
            "seen_ready_s": round(time.monotonic() - clicked, 1),
        }

    def pause(self, row: dict[str, Any]) -> None:
        """Sleep out the rest of ``SAMPLE_EVERY`` since ``row`` was begun."""
        time.sleep(max(0.0, SAMPLE_EVERY - (time.monotonic() - self.began - row["t"])))

    def keep_sending(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self.pause(self.sample("sending"))

    def cancel(self, limit: float = 120.0) -> dict[str, Any]:
        """Press "Cancel the rest"; when the fake received the last message after it."""
        answer: dict[str, Any] = {}

        def press() -> None:
            began = time.monotonic()
            try:
                path = f"/admin/notifications/campaign/{self.campaign_id}/cancel/"
                answer["status"] = self.operator.post(path, {}, timeout=limit).status_code
            except requests.RequestException as err:
                answer["error"] = str(err)
            answer["seconds"] = round(time.monotonic() - began, 2)

        before = last = self.sent()
        clicked = changed = now = time.monotonic()
        presser = threading.Thread(target=press, daemon=True)
        presser.start()
        while now - clicked < limit:
            time.sleep(0.1)
            count, now = self.sent(), time.monotonic()
            if count != last:
                last, changed = count, now
            if not presser.is_alive() and now - changed >= QUIET:
                break
        presser.join(timeout=5)
        # The rest is cancelled behind, by the consumer: until none waits.
        from notifications.cancelling import CANCELLABLE
        from notifications.models import Notification

        # Sends are watched on till then: a consumer that ran ahead of the chunks would send
        # a batch now and then, long after a quiet two seconds.
        # The operator watches meanwhile: the pages are sampled on, under the cancel's load,
        # in a thread of their own (a slow page must not delay seeing a send).
        waiting = Notification.objects.filter(campaign_id=self.campaign_id, status__in=CANCELLABLE)
        watched = threading.Event()

        def watch() -> None:
            while not watched.is_set():
                self.pause(self.sample("cancelling"))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            while waiting.exists() and time.monotonic() - clicked < limit:
                time.sleep(0.5)
                count, now = self.sent(), time.monotonic()
                if count != last:
                    last, changed = count, now
        finally:
            watched.set()
            watcher.join(timeout=limit)
        return {
            "answered_s": answer.get("seconds"),
            "status": answer.get("status", answer.get("error")),
            "last_send_s": round(changed - clicked, 2),
            "sends_after_click": last - before,
            "stopped": time.monotonic() - changed >= QUIET,
            "all_cancelled_s": None if waiting.exists() else round(time.monotonic() - clicked, 1),
            "watched_s": limit,
        }


def all_cancelled(cancel: dict[str, Any]) -> str:
    """When the rest was all cancelled, or that the watch ended first."""
    if cancel["all_cancelled_s"] is not None:
        return f"none left waiting after {cancel['all_cancelled_s']} s"
    return f"some still waiting when the watch ended, {cancel['watched_s']:g} s after the click"


def statuses(campaign_id: int) -> dict[str, int]:
    from django.db.models import Count

    from notifications.models import Notification

    rows = Notification.objects.filter(campaign_id=campaign_id).values("status")
    return {r["status"]: r["n"] for r in rows.annotate(n=Count("id")).order_by("status")}


def spread(samples: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [s[key] for s in samples if key in s]
    if not values:
        return {}
    return {
        "start": values[0],
        "max": max(values),
        "end": values[-1],
        "p50": round(statistics.median(values), 3),
        "p95": round(percentile(values, 0.95), 3),
    }


def stores(options: argparse.Namespace, *, fresh: bool) -> None:
    """The run's Redis db flushed and its database made afresh (``fresh``), or dropped (this
    process's connections closed first)."""
    if not fresh and "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()
    redis.Redis.from_url(options.queue).flushdb()
    recreate_database(options.pg, create=fresh)


def prepare(options: argparse.Namespace, **settings: str) -> tuple[dict[str, str], Any]:
    """The service's environment (``settings`` over the bench's own) in this process too,
    Django set up, the fresh database migrated and filled with ``--recipients`` users, and
    the operator; returns (environment, operator). The operator has no address of its own:
    the campaign's audience is the operator too, and skips it."""
    env = service_environ(
        options.pg,
        options.queue,
        WORK_DIR,
        DJANGO_SECRET_KEY="scale-bench-secret-key-not-for-production-0123456789",
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_UPDATES="off",
        **settings,
    )
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    filled = fill_users(options.pg, options.recipients)
    print(f"{options.recipients:,} users made in {filled:.0f} s", flush=True)
    return env, get_user_model().objects.create_superuser(OPERATOR, "", PASSWORD)


def run(options: argparse.Namespace) -> dict[str, Any]:
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    stores(options, fresh=True)
    telegram = TelegramFake().start()
    processes: list[Any] = [telegram]
    counter = DoorbellCounter(options.queue)
    try:
        env, operator = prepare(
            options,
            DJANGO_ALLOWED_HOSTS="127.0.0.1,testserver",
            TIME_ZONE=late_evening_zone(),
            TELEGRAM_API_URL=telegram.url,
            NOTIFY_TELEGRAM_RATE=TELEGRAM_RATE,
        )
        consumer = Consumer(
            {**env, "NOTIFY_WORKERS": str(THREADS)},
            WORK_DIR / "consumer.log",
            workers=THREADS,
            args=(),
        )
        processes.append(consumer.start())
        consumer.wait_started()
        web = Web(env, WORK_DIR / "web.log")
        processes.append(web)
        web.wait_ready()
        bench = Run(web, consumer, telegram)
        bench.operator.login(OPERATOR, PASSWORD)
        counter.start()
        bench.sample("idle")
        created = bench.create(operator.pk, options.create_timeout)
        doorbells, sent_created = counter.count, bench.sent()
        created["notifications"] = sum(statuses(bench.campaign_id).values())
        print(
            f"created: {created['recipients']:,} in {created['seconds']} s "
            f"({created['state']}); {doorbells:,} doorbells; sending {options.send_seconds:g} s",
            flush=True,
        )
        bench.keep_sending(options.send_seconds)
        sent_window = bench.sent()
        cancelled = bench.cancel()
        bench.sample("cancelled")
        print(f"cancelled: {cancelled}", flush=True)
        active = [s for s in bench.samples if s["phase"] in ("creating", "sending")]
        after = [s for s in bench.samples if s["phase"] in ("cancelling", "cancelled")]
        seconds = created["seconds"] or 0
        return {
            "recipients": options.recipients,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine(),
            "consumer_threads": THREADS,
            "creation": {
                **created,
                "per_second": round(created["recipients"] / seconds) if seconds else 0,
            },
            "web_rss_mib": spread(bench.samples, "web_mib"),
            "consumer_rss_mib": spread(bench.samples, "consumer_mib"),
            "dashboard_s": spread(active, "dashboard_s"),
            "campaign_page_s": spread(active, "campaign_page_s"),
            "dashboard_cancelling_s": spread(after, "dashboard_s"),
            "campaign_page_cancelling_s": spread(after, "campaign_page_s"),
            "cancel": cancelled,
            "doorbells": doorbells,
            "sends": {
                "during_creation": sent_created - bench.samples[0]["sent"],
                "during_window": sent_window - sent_created,
                "window_s": options.send_seconds,
            },
            "statuses": statuses(bench.campaign_id),
            "samples": bench.samples,
        }
    finally:
        counter.stop()
        for process in reversed(processes):
            if isinstance(process, Consumer):
                process.stop(signal.SIGINT, timeout=20)
            else:
                process.stop()
        stores(options, fresh=False)


def creation_alone(options: argparse.Namespace) -> dict[str, Any]:
    """``--alone``: the same campaign created with nothing else running — no consumer, no
    web, nothing sent: the operator's campaign is made as the admin makes it (everyone,
    ``audience_all``), and its notifications by ``manage.py fill_campaign``, the child process
    a consumer starts for it, timed from outside. What the creation costs by itself, against
    what it gets beside the sending on the same cores."""
    stores(options, fresh=True)
    try:
        # Nothing is sent: the bot's API is never called.
        env, operator = prepare(options, TELEGRAM_API_URL="http://127.0.0.1:9")
        from notifications import services
        from notifications.models import Campaign

        campaign = services.campaign_create(
            created_by=operator, audience_query="", message="Hello from the scale bench"
        )
        began = time.perf_counter()
        subprocess.run(
            [sys.executable, "manage.py", "fill_campaign", str(campaign.pk)],
            cwd=BASE_DIR,
            env={**os.environ, **env},
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds = round(time.perf_counter() - began, 1)
        campaign = Campaign.objects.get(pk=campaign.pk)
        made = sum(statuses(campaign.pk).values())
        return {
            "recipients": options.recipients,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine(),
            "seconds": seconds,
            "notifications": made,
            "skipped": campaign.skipped,
            "state": campaign.state,
            "per_second": round(made / seconds) if seconds else 0,
        }
    finally:
        stores(options, fresh=False)


def alone_table(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"A campaign to {result['recipients']:,} users created alone (`manage.py "
            f"fill_campaign`, nothing sending), PostgreSQL; {result['date']}.",
            "",
            "| figure | measured | target |",
            "|---|---:|---|",
            f"| created (the fill process's run) | {result['seconds']} s, "
            f"{result['per_second']:,} recipients/s | ≤ 60 s, ≥ 17,000/s |",
            f"| notifications / skipped / the campaign | {result['notifications']:,} / "
            f"{result['skipped']:,} / {result['state']} | |",
        ]
    )


def table(result: dict[str, Any]) -> str:
    creation, cancel, sends = result["creation"], result["cancel"], result["sends"]
    web, consumer = result["web_rss_mib"], result["consumer_rss_mib"]
    dashboard, page = result["dashboard_s"], result["campaign_page_s"]
    per_doorbell = creation["recipients"] / result["doorbells"] if result["doorbells"] else 0
    window = sends["window_s"]

    def mib(row: dict[str, float]) -> str:
        return f"{row['start']:.0f} / {row['max']:.0f} / {row['end']:.0f}"

    def latency(row: dict[str, float]) -> str:
        return f"{row['p50']:.2f} / {row['max']:.2f}" if row else "–"

    lines = [
        f"A campaign to {result['recipients']:,} users, PostgreSQL + Redis, one consumer of "
        f"{result['consumer_threads']} threads, gunicorn 2 × 4; {result['date']}.",
        "",
        "| figure | measured | target |",
        "|---|---:|---|",
        f"| campaign created (click → created_all_at) | {creation['seconds']} s, "
        f"{creation['per_second']:,} recipients/s | ≤ 60 s, ≥ 17,000/s |",
        f"| recipients created / notifications counted / skipped | {creation['recipients']:,} / "
        f"{creation['notifications']:,} / {creation['skipped']:,} | |",
        f"| the click answered in | {creation['click_answered_s']:.2f} s | |",
        f"| web RSS, 3 processes (MiB) start / max / end | {mib(web)} | flat |",
        f"| consumer RSS (MiB) start / max / end | {mib(consumer)} | flat |",
        f"| dashboard p50 / max (s), creating and sending | {latency(dashboard)} | < 1 s |",
        f"| campaign page p50 / max (s), creating and sending | {latency(page)} | < 1 s |",
        f"| dashboard / campaign page p50 / max (s), while the rest is cancelled | "
        f"{latency(result['dashboard_cancelling_s'])} / "
        f"{latency(result['campaign_page_cancelling_s'])} | |",
        f'| "Cancel the rest" → last send | {cancel["last_send_s"]:.2f} s '
        f"({cancel['sends_after_click']:,} sent after the click; answered in "
        f"{cancel['answered_s']} s; {all_cancelled(cancel)}) | ≤ 2 s |",
        f"| doorbells while creating / recipients per doorbell | {result['doorbells']:,} / "
        f"{per_doorbell:.1f} | O(recipients / batch size) |",
        f"| the campaign's notifications at the end | "
        f"{', '.join(f'{n:,} {status}' for status, n in result['statuses'].items())} | |",
        f"| sends while creating / in the {window:g} s after | "
        f"{sends['during_creation']:,} / {sends['during_window']:,} "
        f"({sends['during_window'] / window:,.0f}/s) | |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--pg", default=PG_URL, help="its PostgreSQL database (made afresh)")
    parser.add_argument("--queue", default=QUEUE_URL, help="its Redis db (flushed)")
    parser.add_argument("--send-seconds", type=float, default=60.0, help="sending after creation")
    parser.add_argument("--create-timeout", type=float, default=1800.0)
    parser.add_argument(
        "--alone",
        action="store_true",
        help="only create the campaign, with nothing else running (no consumer, no web)",
    )
    options = parser.parse_args()
    measure, render, name = (
        (creation_alone, alone_table, "scale_alone.json")
        if options.alone
        else (run, table, "scale.json")
    )
    result = measure(options)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / name).write_text(json.dumps(result, indent=1, default=str) + "\n")
    print()
    print(render(result))
    if not options.alone and "cancelled" not in result["statuses"]:
        print("\nNothing was left to cancel: shorten --send-seconds for so few recipients.")


if __name__ == "__main__":
    main()
