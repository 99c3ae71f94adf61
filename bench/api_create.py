"""The HTTP API's create throughput on PostgreSQL. (Its list at a million rows:
``bench/operator_million.py``.)

A benchmark, not a test: ``python bench/api_create.py`` (``make bench`` will run it later).

It makes its own database afresh (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/notify_bench_api``, dropped and created) and uses its
own Redis db as the queue (``BENCH_QUEUE_URL``, default ``redis://127.0.0.1:6379/13``,
flushed), serves the API as ``make run`` does (gunicorn, 2 workers × 4 threads, on
127.0.0.1) and sends it requests from client threads in this process, each with its own
keep-alive connection:

- single: ``POST /api/v1/notifications``, one notification per request (1 client, then 8);
- single with an ``Idempotency-Key`` on every request (8 clients);
- batch: ``POST /api/v1/notifications/batch`` with 100 and with 1,000 per request.

Every notification is created queued, its doorbell rung in Redis after commit, as in
production; no consumer runs, so only the API is measured. Throttling stays on at a rate that
never binds (``NOTIFY_API_RATE=1000000/s``), so its cost is counted. It prints a markdown
table (``--out FILE`` writes it too).
The clients share the machine's cores with the server, PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis
import requests

BASE_DIR = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/notify_bench_api")
REDIS_URL = os.environ.get("BENCH_QUEUE_URL", "redis://127.0.0.1:6379/13")
USERS = 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def fresh_database() -> None:
    redis.Redis.from_url(REDIS_URL).flushdb()
    dbname = PG_URL.rsplit("/", 1)[1]
    with psycopg.connect(PG_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')


def service_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFY_", "DJANGO_"))}
    env.update(
        NOTIFY_SKIP_DOTENV="1",
        NOTIFY_VAR_DIR=str(BASE_DIR / "var" / "bench_api"),
        DATABASE_URL=PG_URL,
        QUEUE_URL=REDIS_URL,
        NOTIFY_API_RATE="1000000/s",
        LOG_LEVEL="WARNING",
    )
    return env


def manage(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


SETUP = f"""
from django.contrib.auth import get_user_model
User = get_user_model()
User.objects.bulk_create(User(username=f"user{{i}}") for i in range({USERS}))
"""


class Server:
    """gunicorn as ``manage.py runservice`` starts it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "notification_service.wsgi",
                "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--threads", "4",
            ],
            cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/notifications", timeout=10)
                return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


def run_clients(
    clients: int, requests_each: int, make: Callable[[int, int], tuple[str, dict, dict]]
) -> tuple[float, list[float]]:
    """``clients`` threads each sending ``requests_each`` POSTs; (seconds, latencies)."""
    latencies: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        session = requests.Session()
        start.wait()
        for n in range(requests_each):
            url, body, headers = make(index, n)
            began = time.perf_counter()
            response = session.post(url, json=body, headers=headers, timeout=120)
            latencies.append(time.perf_counter() - began)
            if response.status_code != 202:
                errors.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, e.g. {errors[0]}")
    return elapsed, latencies


def create_rows(server: Server, headers: dict[str, str]) -> list[dict]:
    url = f"{server.url}/notifications"

    def single(idempotent: bool) -> Callable[[int, int], tuple[str, dict, dict]]:
        def make(index: int, n: int) -> tuple[str, dict, dict]:
            body = {"user": f"user{(index * 7919 + n) % USERS}", "message": f"Order {n} shipped"}
            extra = {"Idempotency-Key": str(uuid.uuid4())} if idempotent else {}
            return url, body, {**headers, **extra}

        return make

    def batch(size: int) -> Callable[[int, int], tuple[str, dict, dict]]:
        def make(index: int, n: int) -> tuple[str, dict, dict]:
            items = [
                {"user": (index * size + n + i) % USERS + 1, "message": f"Invoice {n}-{i} paid"}
                for i in range(size)
            ]
            return f"{url}/batch", {"notifications": items}, headers

        return make

    runs = [
        ("single", 1, 300, 1, single(False)),
        ("single", 8, 250, 1, single(False)),
        ("single + Idempotency-Key", 8, 250, 1, single(True)),
        ("batch of 100", 4, 25, 100, batch(100)),
        ("batch of 1,000", 2, 10, 1000, batch(1000)),
    ]
    rows = []
    for label, clients, each, per_request, make in runs:
        run_clients(clients, 5, make)  # warm up: connections, caches
        elapsed, latencies = run_clients(clients, each, make)
        requests_made = clients * each
        rows.append(
            {
                "mode": label,
                "clients": clients,
                "requests": requests_made,
                "notifications": requests_made * per_request,
                "per_second": requests_made * per_request / elapsed,
                "requests_per_second": requests_made / elapsed,
                "p50_ms": statistics.median(latencies) * 1000,
                "p95_ms": percentile(latencies, 0.95) * 1000,
            }
        )
        print(f"  {label}, {clients} clients: {rows[-1]['per_second']:.0f} notifications/s")
    return rows


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    with psycopg.connect(PG_URL) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    rv = redis.Redis.from_url(REDIS_URL).info()["redis_version"]
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"PostgreSQL {pg}, Redis {rv}"
    )


def report(create: list[dict]) -> str:
    lines = [
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}. gunicorn 2 "
        "workers × 4 threads; client threads on the same machine; PostgreSQL + Redis.",
        "",
        "| API create | clients | requests | notifications | notifications/s | requests/s "
        "| p50 (ms) | p95 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in create:
        lines.append(
            f"| {r['mode']} | {r['clients']} | {r['requests']:,} | {r['notifications']:,} "
            f"| {r['per_second']:,.0f} | {r['requests_per_second']:,.0f} | {r['p50_ms']:.1f} "
            f"| {r['p95_ms']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="also write the tables to this file")
    options = parser.parse_args()

    fresh_database()
    env = service_env()
    manage("migrate", "--noinput", env=env)
    manage("shell", "-c", SETUP, env=env)
    key = manage("create_api_key", "bench", env=env)
    headers = {"Authorization": f"Bearer {key}"}
    server = Server(env)
    try:
        print("API create:")
        create = create_rows(server, headers)
    finally:
        server.stop()
        redis.Redis.from_url(REDIS_URL).flushdb()
    text = report(create)
    print()
    print(text)
    if options.out:
        options.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
