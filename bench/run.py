"""``make bench``: throughput, latency, pacing, bulk-action cost and memory of the service.

A benchmark, not a test. ``python bench/run.py`` starts the fake Telegram Bot API in a process
of its own, then measures each tier in a child process (``python bench/run.py measure
--tier sqlite|pg``) that runs the real consumer (``manage.py run_huey``) as a subprocess:

- throughput: notifications through the fake (50 ms per answer), from the bulk admin action
  to the last ``sent``, for 1, 8 and 32 worker threads, with p50/p95 queued → sent;
- baseline: the same notifications sent one after another inside the request, as the original
  project did;
- floor: the same threads doing only a claim UPDATE, the HTTP call and a final UPDATE with the
  plain database driver (psycopg, sqlite3);
- paced: 600 through the fake enforcing 30 messages/second, at the default NOTIFY_TELEGRAM_RATE;
- bulk action cost: queries and milliseconds of "Send selected" for 10 … 10,000 rows;
- memory: the consumer's RSS over a 10,000-notification run (PostgreSQL + Redis).

It prints a markdown table and writes ``bench/results/results.md``, ``results.json`` and
``bench.png`` (copied to ``assets/bench.png``). The runs with 1 thread and the in-request
baseline send 400 notifications (each takes 50 ms; 2,000 would take minutes); rates are per
second, so they compare. ``BENCH_FULL=1`` sends 2,000 there too; ``BENCH_QUICK=1`` makes every
run a tenth or less, to check the bench itself.

The PostgreSQL + Redis tier uses its own database and Redis db (``BENCH_DATABASE_URL``,
default ``postgres://postgres@127.0.0.1:5432/notify_bench``, dropped and created afresh;
``BENCH_QUEUE_URL``, default ``redis://127.0.0.1:6379/14``, flushed) and is skipped when
either doesn't answer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS = BASE_DIR / "bench" / "results"
WORK = BASE_DIR / "var" / "bench"
TOKEN = "123456:BENCH-token"
LATENCY = 0.05
FULL = os.environ.get("BENCH_FULL", "") not in ("", "0")
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")  # a smoke run of the bench itself
N = 200 if QUICK else 2000
N_SLOW = N if FULL else N // 5  # 1 thread and the in-request baseline: 50 ms each
THREADS = (1, 8, 32)
# Profiling aid: BENCH_PROFILE=32 runs only the throughput of that many threads (and the
# two-consumer run on PostgreSQL + Redis), prints it and stops; no table is written.
PROFILE_THREADS = int(os.environ.get("BENCH_PROFILE") or 0)
PACED_N = 60 if QUICK else 600
PACED_LIMIT = 30
PACED_RATE = 25.0  # NOTIFY_TELEGRAM_RATE's default
BULK_SIZES = (10, 100, 1000, 10_000)
MEMORY_N = 500 if QUICK else 10_000
USERS = 10_000
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/notify_bench")
REDIS_URL = os.environ.get("BENCH_QUEUE_URL", "redis://127.0.0.1:6379/14")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)] if ordered else 0.0


class Fake:
    """The fake Telegram Bot API in a process of its own, driven over HTTP."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Fake:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "notifications.tests.fakes.telegram",
                "--port",
                str(self.port),
                "--token",
                TOKEN,
                "--latency",
                str(LATENCY),
            ],
            cwd=BASE_DIR,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.stats()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the fake Telegram did not start")

    def _post(self, path: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).read()

    def reset(self, **config: Any) -> None:
        self._post("/_fake/reset", {})
        self._post("/_fake/config", {"latency": LATENCY, **config})

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.url + "/_fake/stats", timeout=10) as response:
            return json.load(response)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


# --- one tier, in a process of its own ------------------------------------------------------
class Tier:
    def __init__(self, name: str, fake_url: str) -> None:
        self.name = name
        self.fake_url = fake_url
        if name == "sqlite":
            self.database_url = f"sqlite:///{WORK / 'db.sqlite3'}"
            self.queue_url = f"sqlite:///{WORK / 'huey.sqlite3'}"
        else:
            self.database_url = PG_URL
            self.queue_url = REDIS_URL

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TELEGRAM_", "EMAIL_", "NOTIFY_", "SMS", "SMPP_", "DJANGO_"))
        }
        env.update(
            DJANGO_SETTINGS_MODULE="notification_service.settings",
            NOTIFY_SKIP_DOTENV="1",
            NOTIFY_VAR_DIR=str(WORK),
            DATABASE_URL=self.database_url,
            QUEUE_URL=self.queue_url,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=self.fake_url,
        )
        env.update(extra)
        return env


class Consumer:
    """``manage.py run_huey`` with T threads, as ``make run`` starts it."""

    def __init__(self, tier: Tier, threads: int, index: int = 1, **env: str) -> None:
        self.log = WORK / f"consumer-{tier.name}-{threads}-{index}.log"
        self.log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_huey", "-w", str(threads), "-k", "thread"],
            cwd=BASE_DIR,
            env=tier.env(**env),
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while "consumer started" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"consumer did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def rss_kib(self) -> tuple[int, int]:
        """(current, peak) resident set size in KiB."""
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip().split()[0] if value.strip() else "0"
        return int(fields.get("VmRSS", 0)), int(fields.get("VmHWM", 0))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def measure(tier_name: str, fake_url: str, out: Path) -> None:
    tier = Tier(tier_name, fake_url)
    os.environ.update(tier.env(NOTIFY_TELEGRAM_RATE="0", NOTIFY_TELEGRAM_CHAT_RATE="0"))
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Max
    from django.test.client import RequestFactory
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from huey.contrib.djhuey import HUEY

    from notifications.models import Notification, UserContact
    from notifications.senders.telegram import TelegramSender

    fake = FakeClient(fake_url)
    call_command("migrate", verbosity=0)
    User = get_user_model()
    users = User.objects.bulk_create(
        [User(username=f"bench{i}", password="!") for i in range(USERS)], batch_size=2000
    )
    UserContact.objects.bulk_create(
        [UserContact(user=u, telegram_chat_id=str(5_000_000 + i)) for i, u in enumerate(users)],
        batch_size=2000,
    )
    admin_user = User.objects.create_superuser("bench-admin", "admin@example.com", "x")
    Status = Notification.Status
    results: dict[str, Any] = {"tier": tier_name, "throughput": {}, "floor": {}}

    def fresh(n: int, status: str = Status.PENDING) -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM notifications_deliveryattempt")
            cursor.execute("DELETE FROM notifications_notification")
        HUEY.flush()
        now = timezone.now()
        queued = {"queued_at": now, "next_attempt_at": now} if status == Status.QUEUED else {}
        created = Notification.objects.bulk_create(
            [
                Notification(user=u, message=f"bench {i}", status=status, **queued)
                for i, u in enumerate(users[:n])
            ],
            batch_size=2000,
        )
        return [c.pk for c in created]

    def wait_sent(ids: list[int], timeout: float, consumer: Consumer | None = None, probe=None):
        deadline = time.monotonic() + timeout
        done = Notification.objects.filter(pk__in=ids, status=Status.SENT)
        while (count := done.count()) < len(ids):
            if probe:
                probe(count)
            if time.monotonic() > deadline:
                log = consumer.log.read_text()[-3000:] if consumer else ""
                raise RuntimeError(f"only {count}/{len(ids)} sent in {timeout}s\n{log}")
            time.sleep(0.1)

    def timings(ids: list[int], started: datetime) -> dict[str, float]:
        rows = Notification.objects.filter(pk__in=ids).values_list("queued_at", "sent_at")
        latencies = [(sent - queued_at).total_seconds() for queued_at, sent in rows]
        last = Notification.objects.filter(pk__in=ids).aggregate(last=Max("sent_at"))["last"]
        elapsed = (last - started).total_seconds()
        return {
            "n": len(ids),
            "seconds": round(elapsed, 2),
            "rate": round(len(ids) / elapsed, 1),
            "p50": round(percentile(latencies, 0.5), 2),
            "p95": round(percentile(latencies, 0.95), 2),
        }

    # The bulk admin action, as an operator clicks it.
    model_admin = admin.site._registry[Notification]

    def send_selected(ids: list[int]) -> None:
        request = RequestFactory().post("/admin/notifications/notification/")
        request.user = admin_user
        request.session = {}
        request._messages = FallbackStorage(request)
        model_admin.send_selected(request, Notification.objects.filter(pk__in=ids))

    def click_and_wait(ids: list[int], consumers: list[Consumer], timeout: float) -> datetime:
        """Click "Send selected" on ``ids``, wait until all are sent, stop the consumers.

        Returns the time of the click.
        """
        try:
            started = timezone.now()
            send_selected(ids)
            wait_sent(ids, timeout, consumers[0])
        finally:
            for consumer in consumers:
                consumer.stop()
        return started

    # --- throughput ---
    for threads in (PROFILE_THREADS,) if PROFILE_THREADS else THREADS:
        n = N_SLOW if threads == 1 else N
        ids = fresh(n)
        fake.reset()
        started = click_and_wait(ids, [Consumer(tier, threads, NOTIFY_TELEGRAM_RATE="1000")], 600)
        row = timings(ids, started)
        row["duplicates"] = fake.stats()["messages"] - n
        results["throughput"][threads] = row
        print(f"  {tier_name} {threads:>2} threads: {row}", flush=True)

    # --- scale-out: the same 32 threads as two consumer processes (one per core) ---
    if tier_name == "pg":
        ids = fresh(N)
        fake.reset()
        consumers = [Consumer(tier, 16, i, NOTIFY_TELEGRAM_RATE="1000") for i in (1, 2)]
        started = click_and_wait(ids, consumers, 600)
        row = timings(ids, started)
        row["duplicates"] = fake.stats()["messages"] - N
        results["two_consumers"] = row
        print(f"  {tier_name} 2 consumers x 16 threads: {row}", flush=True)

    if PROFILE_THREADS:
        out.write_text(json.dumps(results))
        return

    # --- baseline: sent inside the request, one after another ---
    ids = fresh(N_SLOW, Status.QUEUED)
    fake.reset()
    sender = TelegramSender()
    started = timezone.now()
    for notification in Notification.objects.filter(pk__in=ids).select_related("user__contact"):
        sender.send(notification.user.contact, notification)
        notification.status = Status.SENT
        notification.channel = "telegram"
        notification.sent_at = timezone.now()
        notification.save()
    results["baseline"] = timings(ids, started)
    print(f"  {tier_name} baseline: {results['baseline']}", flush=True)

    # --- floor: claim UPDATE, HTTP call, final UPDATE with the plain driver ---
    for threads in THREADS:
        n = N_SLOW if threads == 1 else N
        ids = fresh(n, Status.QUEUED)
        fake.reset()
        row = floor(settings.DATABASES["default"], fake_url, ids, threads)
        results["floor"][threads] = row
        print(f"  {tier_name} floor {threads:>2} threads: {row}", flush=True)

    # --- paced: the fake answers 429 beyond 30/s; the default NOTIFY_TELEGRAM_RATE ---
    ids = fresh(PACED_N)
    fake.reset(rate_limit=PACED_LIMIT)
    started = click_and_wait(ids, [Consumer(tier, 8, NOTIFY_TELEGRAM_RATE=str(PACED_RATE))], 300)
    sent_at = sorted(
        Notification.objects.filter(pk__in=ids).values_list("sent_at", flat=True).iterator()
    )
    span = (sent_at[-1] - sent_at[0]).total_seconds()
    rate = (len(sent_at) - 1) / span
    results["paced"] = {
        "n": PACED_N,
        "rate": round(rate, 2),
        "configured": PACED_RATE,
        "provider_limit": PACED_LIMIT,
        "share_of_configured": round(rate / PACED_RATE, 3),
        "share_of_provider": round(rate / PACED_LIMIT, 3),
        "too_many": fake.stats()["too_many"],
        "seconds": round((sent_at[-1] - started).total_seconds(), 1),
    }
    print(f"  {tier_name} paced: {results['paced']}", flush=True)

    # --- bulk action cost ---
    results["bulk"] = {}
    fake.reset()
    for size in BULK_SIZES:
        ids = fresh(size)
        runs = []
        for _ in range(3):
            Notification.objects.filter(pk__in=ids).update(status=Status.PENDING)
            HUEY.flush()
            with CaptureQueriesContext(connection) as captured:
                began = time.perf_counter()
                send_selected(ids)
                runs.append((time.perf_counter() - began) * 1000)
            queries = len(captured.captured_queries)
        HUEY.flush()
        results["bulk"][size] = {"queries": queries, "ms": round(statistics.median(runs), 1)}
        print(f"  {tier_name} bulk {size}: {results['bulk'][size]}", flush=True)

    # --- memory over a long run (the scale-out tier) ---
    if tier_name == "pg":
        ids = fresh(MEMORY_N)
        fake.reset()
        consumer = Consumer(tier, 32, NOTIFY_TELEGRAM_RATE="1000")
        samples: list[tuple[int, int]] = []
        try:
            samples.append((0, consumer.rss_kib()[0]))
            started = timezone.now()
            send_selected(ids)
            wait_sent(
                ids, 900, consumer, probe=lambda done: samples.append((done, consumer.rss_kib()[0]))
            )
            samples.append((MEMORY_N, consumer.rss_kib()[0]))
            peak = consumer.rss_kib()[1]
        finally:
            consumer.stop()
        row = timings(ids, started)

        def rss_at(share: float) -> int:
            return next(rss for done, rss in samples if done >= share * MEMORY_N)

        results["memory"] = {
            **row,
            "peak_mib": round(peak / 1024, 1),
            "rss_mib_at_10pct": round(rss_at(0.1) / 1024, 1),
            "rss_mib_at_50pct": round(rss_at(0.5) / 1024, 1),
            "rss_mib_at_end": round(samples[-1][1] / 1024, 1),
            "samples": samples,
        }
        print(
            f"  {tier_name} memory: { {k: v for k, v in results['memory'].items() if k != 'samples'} }"
        )

    out.write_text(json.dumps(results))


class FakeClient(Fake):
    """The same controls, for a fake another process started."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.process = None


def floor(database: dict, fake_url: str, ids: list[int], threads: int) -> dict[str, float]:
    """The least work a send can cost: claim, HTTP call, final write; plain driver, no ORM."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=8, pool_maxsize=64))
    url = f"{fake_url}/bot{TOKEN}/sendMessage"
    work: queue.Queue[int] = queue.Queue()
    for pk in ids:
        work.put(pk)
    sqlite = database["ENGINE"].endswith("sqlite3")
    mark = "?" if sqlite else "%s"
    claim = (
        f"UPDATE notifications_notification SET status = 'sending', "
        f"attempt_count = attempt_count + 1 WHERE id = {mark} AND status = 'queued'"
    )
    finish = f"UPDATE notifications_notification SET status = 'sent' WHERE id = {mark}"

    def connect():
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


# --- the orchestrator -----------------------------------------------------------------------
def pg_and_redis_ready() -> str:
    """Empty when the PostgreSQL + Redis tier can run (its database made afresh), else why not."""
    try:
        import psycopg
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        dbname = PG_URL.rsplit("/", 1)[1]
        with psycopg.connect(PG_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{dbname}"')
    except Exception as err:  # noqa: BLE001 (any failure means: skip this tier, say why)
        return f"{type(err).__name__}: {err}"
    return ""


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    versions = [f"Python {platform.python_version()}", f"SQLite {sqlite3.sqlite_version}"]
    for command, label in (
        (["psql", "-V"], "PostgreSQL"),
        (["redis-server", "--version"], "Redis"),
    ):
        try:
            text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            versions.append(f"{label} {text.split()[2].removeprefix('v=')}")
        except (OSError, subprocess.CalledProcessError, IndexError):
            pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_kib / 1024 / 1024:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}; {', '.join(versions)}"
    )


TIER_LABEL = {"sqlite": "SQLite + SqliteHuey", "pg": "PostgreSQL + Redis"}


def table(results: dict[str, dict], skipped: dict[str, str]) -> str:
    lines = [
        "| tier | threads | notifications/s | p50 queued→sent (s) | p95 (s) | floor/s | share of floor | × baseline |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tier, res in results.items():
        base = res["baseline"]["rate"]
        for threads, row in res["throughput"].items():
            floor_rate = res["floor"][threads]["rate"]
            lines.append(
                f"| {TIER_LABEL[tier]} | {threads} | {row['rate']} | {row['p50']} | {row['p95']} "
                f"| {floor_rate} | {row['rate'] / floor_rate:.0%} | {row['rate'] / base:.1f}× |"
            )
        if "two_consumers" in res:
            row, floor_rate = res["two_consumers"], res["floor"]["32"]["rate"]
            lines.append(
                f"| {TIER_LABEL[tier]} | 2 consumers × 16 | {row['rate']} | {row['p50']} "
                f"| {row['p95']} | {floor_rate} | {row['rate'] / floor_rate:.0%} "
                f"| {row['rate'] / base:.1f}× |"
            )
        b = res["baseline"]
        lines.append(
            f"| {TIER_LABEL[tier]} | in-request baseline | {b['rate']} | {b['p50']} | {b['p95']} | | | 1.0× |"
        )
    lines += [
        "",
        "| tier | paced rate/s | share of NOTIFY_TELEGRAM_RATE (25) | share of the fake's 30/s | 429s |",
        "|---|---:|---:|---:|---:|",
    ]
    for tier, res in results.items():
        p = res["paced"]
        lines.append(
            f"| {TIER_LABEL[tier]} | {p['rate']} | {p['share_of_configured']:.0%} "
            f"| {p['share_of_provider']:.0%} | {p['too_many']} |"
        )
    sizes = list(next(iter(results.values()))["bulk"]) if results else []
    lines += [
        "",
        "| tier | bulk “Send selected”: " + " | ".join(f"{s} rows" for s in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for tier, res in results.items():
        cells = " | ".join(f"{v['queries']} queries, {v['ms']} ms" for v in res["bulk"].values())
        lines.append(f"| {TIER_LABEL[tier]} | {cells} |")
    if "pg" in results and "memory" in results["pg"]:
        m = results["pg"]["memory"]
        lines += [
            "",
            f"Memory, PostgreSQL + Redis, 32 threads, {m['n']:,} notifications "
            f"({m['rate']}/s): consumer RSS {m['rss_mib_at_10pct']} MiB at 10%, "
            f"{m['rss_mib_at_50pct']} MiB at 50%, {m['rss_mib_at_end']} MiB at the end; "
            f"peak {m['peak_mib']} MiB.",
        ]
    for tier, why in skipped.items():
        lines.append(f"\n{TIER_LABEL[tier]}: skipped ({why}).")
    return "\n".join(lines)


def chart(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.2
    for i, (tier, res) in enumerate(results.items()):
        xs = [x + (i * 2 - 1.5) * width for x in range(len(THREADS))]
        left.bar(
            xs, [res["throughput"][str(t)]["rate"] for t in THREADS], width, label=TIER_LABEL[tier]
        )
        left.bar(
            [x + width for x in xs],
            [res["floor"][str(t)]["rate"] for t in THREADS],
            width,
            label=f"floor ({TIER_LABEL[tier]})",
            alpha=0.45,
        )
        left.axhline(res["baseline"]["rate"], linestyle=":", linewidth=1)
    left.set_xticks(range(len(THREADS)), [f"{t} threads" for t in THREADS])
    left.set_ylabel("notifications / s")
    left.set_title("Throughput (Telegram fake answering in 50 ms); dotted: in-request baseline")
    left.legend(fontsize=8)
    memory = results.get("pg", {}).get("memory")
    if memory:
        done, rss = zip(*memory["samples"], strict=True)
        right.plot(done, [r / 1024 for r in rss])
        right.set_xlabel("notifications sent")
        right.set_ylabel("consumer RSS (MiB)")
        right.set_ylim(bottom=0)
        right.set_title(f"Consumer memory over {memory['n']:,} notifications (32 threads)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def orchestrate() -> None:
    began = time.monotonic()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    fake = Fake().start()
    results: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    try:
        for tier in os.environ.get("BENCH_TIERS", "sqlite,pg").split(","):
            if tier == "pg" and (why := pg_and_redis_ready()):
                skipped[tier] = why
                print(f"{TIER_LABEL[tier]}: skipped ({why})", flush=True)
                continue
            print(f"{TIER_LABEL[tier]}:", flush=True)
            out = WORK / f"{tier}.json"
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "measure",
                    "--tier",
                    tier,
                    "--fake",
                    fake.url,
                    "--out",
                    str(out),
                ],
                cwd=BASE_DIR,
                check=True,
            )
            results[tier] = json.loads(out.read_text())
    finally:
        fake.stop()
    if PROFILE_THREADS:
        print(json.dumps({tier: res["throughput"] for tier, res in results.items()}, indent=1))
        print(json.dumps({tier: res.get("two_consumers") for tier, res in results.items()}))
        return
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"# Benchmark\n\nRun {when} on {machine()}; `make bench` took "
        f"{(time.monotonic() - began) / 60:.1f} min. The Telegram fake answers in 50 ms and runs "
        f"in a process of its own. Throughput runs use NOTIFY_TELEGRAM_RATE=1000 (pacing on, not "
        f"binding); 1-thread runs and the baseline send {N_SLOW}, others {N}.\n\n"
        f"{table(results, skipped)}\n\n![benchmark](bench.png)\n"
    )
    (RESULTS / "results.md").write_text(text)
    (RESULTS / "results.json").write_text(json.dumps({"machine": machine(), **results}, indent=1))
    if results:
        chart(results, RESULTS / "bench.png")
        shutil.copy(RESULTS / "bench.png", BASE_DIR / "assets" / "bench.png")
    print("\n" + text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("measure", help="measure one tier (run by the orchestrator)")
    one.add_argument("--tier", choices=["sqlite", "pg"], required=True)
    one.add_argument("--fake", required=True, help="URL of the fake Telegram")
    one.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "measure":
        measure(args.tier, args.fake, args.out)
    else:
        orchestrate()


if __name__ == "__main__":
    main()
