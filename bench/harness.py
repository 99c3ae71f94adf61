"""What every scenario stands on: settings read from the environment, the fake providers in
processes of their own, the database tiers, and timing, CPU and memory helpers.

Nothing here imports Django: the orchestrator uses this module before any settings exist.
The Django side (users, notifications, the bulk action, consumers) is ``bench.workbench``.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

# The environment of the service's processes, shared with the tests' consumers (re-exported).
from notifications.tests.harness import service_environ

BASE_DIR = Path(__file__).resolve().parent.parent
RESULTS = BASE_DIR / "bench" / "results"
WORK = BASE_DIR / "var" / "bench"


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


# --- the bench's own settings (docs/reliability.md#benchmark lists them) ---------------------
QUICK = env_flag("BENCH_QUICK")  # every scenario at reduced size: a check of the bench itself
FULL = env_flag("BENCH_FULL")  # the 1-thread and in-request runs send as many as the others
# BENCH_PROFILE=32: only the throughput of that many threads (and the two-consumer run on
# PostgreSQL + Redis, and throughput_preferences), printed; no report written.
PROFILE_THREADS = int(os.environ.get("BENCH_PROFILE") or 0)
ONLY = [name.strip() for name in os.environ.get("BENCH_ONLY", "").split(",") if name.strip()]
TIERS = [t.strip() for t in os.environ.get("BENCH_TIERS", "sqlite,pg").split(",") if t.strip()]
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/notify_bench")
REDIS_URL = os.environ.get("BENCH_QUEUE_URL", "redis://127.0.0.1:6379/14")
SMTP_TLS = env_flag("BENCH_SMTP_TLS")  # email over STARTTLS (the fake's test certificate)

TOKEN = "123456:BENCH-token"
LATENCY = 0.05  # the fake Telegram's answer time
TIER_LABEL = {"sqlite": "SQLite + SqliteHuey", "pg": "PostgreSQL + Redis"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)] if ordered else 0.0


# --- fake providers, each in a process of its own, driven over HTTP ----------------------------
class FakeProcess:
    """A fake provider's process and its ``/_fake/…`` control channel at ``control_url``."""

    name = "fake"

    def __init__(self, control_url: str = "") -> None:
        self.control_url = control_url
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> FakeProcess:
        self.process = subprocess.Popen(
            self.command(), cwd=BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.stats()
                return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"the {self.name} fake did not start")

    def _post(self, path: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.control_url + path,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).read()

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.control_url + "/_fake/stats", timeout=10) as response:
            return json.load(response)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class TelegramFake(FakeProcess):
    """The fake Telegram Bot API (``notifications.tests.fakes.telegram``), answering in 50 ms."""

    name = "Telegram"

    def __init__(self, url: str = "") -> None:
        self.port = 0 if url else free_port()
        super().__init__(url or f"http://127.0.0.1:{self.port}")

    @property
    def url(self) -> str:
        """The Bot API's base URL (``TELEGRAM_API_URL``); the control channel is the same."""
        return self.control_url

    def command(self) -> list[str]:
        # socketserver listens with a backlog of 5: 32 consumer threads connecting at once
        # overflow it, and a connection the kernel then drops is a "Connection reset by peer"
        # the service retries 20-30 s later, which the bench would measure as the service's
        # time. The fake in this process listens with a backlog of 1024 instead.
        start = (
            "import http.server; http.server.ThreadingHTTPServer.request_queue_size = 1024; "
            "from notifications.tests.fakes.telegram import main; main()"
        )
        return [
            sys.executable,
            "-c",
            start,
            "--port",
            str(self.port),
            "--token",
            TOKEN,
            "--latency",
            str(LATENCY),
        ]

    def reset(self, **config: Any) -> None:
        """Forget every message and count; answer in 50 ms unless ``config`` says otherwise."""
        self._post("/_fake/reset", {})
        self._post("/_fake/config", {"latency": LATENCY, **config})


class SmtpFake(FakeProcess):
    """The fake SMTP server (``notifications.tests.fakes.smtp``), with its HTTP stats port."""

    name = "SMTP"

    def __init__(self, port: int = 0, control_url: str = "") -> None:
        self.port = port or free_port()
        self.control_port = 0 if control_url else free_port()
        super().__init__(control_url or f"http://127.0.0.1:{self.control_port}")

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "notifications.tests.fakes.smtp",
            "--port",
            str(self.port),
            "--control-port",
            str(self.control_port),
            *(["--tls"] if SMTP_TLS else []),
        ]

    def reset(self, **config: Any) -> None:
        """Forget messages and counts; ``session_delay`` / ``message_delay`` as given, else 0."""
        self._post("/_fake/reset", {})
        self._post("/_fake/config", {"session_delay": 0.0, "message_delay": 0.0, **config})


# --- database tiers ------------------------------------------------------------------------
class Tier:
    """Where the service keeps its rows and its queue: ``sqlite`` (embedded) or ``pg`` (+ Redis)."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name == "sqlite":
            self.database_url = f"sqlite:///{WORK / 'db.sqlite3'}"
            self.queue_url = f"sqlite:///{WORK / 'huey.sqlite3'}"
        elif name == "pg":
            self.database_url = PG_URL
            self.queue_url = REDIS_URL
        else:
            raise ValueError(f"unknown tier {name!r}; use sqlite or pg")

    @property
    def label(self) -> str:
        return TIER_LABEL[self.name]

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process of the service on this tier (``service_environ``)."""
        return service_environ(self.database_url, self.queue_url, WORK, **extra)


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


# --- processes: CPU time and memory from /proc -------------------------------------------------
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds a process has used so far, all its threads together."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)"; comm may hold spaces
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it (parents read from ``/proc/*/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    tree = [root]
    for pid in tree:
        tree.extend(children.get(pid, []))
    return tree


def process_tree_cpu(root: int) -> float:
    """CPU seconds used so far by ``root`` and its living descendants (a process that ended
    meanwhile counts nothing)."""
    total = 0.0
    for pid in process_tree(root):
        try:
            total += sum(cpu_seconds(pid))
        except OSError:
            pass  # it ended between the listing and the reading
    return total


def rss_kib(pid: int) -> tuple[int, int]:
    """(current, peak) resident set size of a process in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip().split()[0] if value.strip() else "0"
    return int(fields.get("VmRSS", 0)), int(fields.get("VmHWM", 0))


class CpuMeter:
    """CPU used by some processes between ``CpuMeter(pids)`` and ``.stop()``."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.began = [cpu_seconds(pid) for pid in pids]
        self.user = self.system = 0.0

    def stop(self) -> CpuMeter:
        now = [cpu_seconds(pid) for pid in self.pids]
        self.user = sum(u - u0 for (u, _), (u0, _) in zip(now, self.began, strict=True))
        self.system = sum(s - s0 for (_, s), (_, s0) in zip(now, self.began, strict=True))
        return self

    @property
    def total(self) -> float:
        return self.user + self.system

    def per_item_ms(self, items: int) -> dict[str, float]:
        """Milliseconds of CPU per item: total, user and system."""
        return {
            "cpu_ms": round(self.total * 1000 / items, 2),
            "cpu_user_ms": round(self.user * 1000 / items, 2),
            "cpu_system_ms": round(self.system * 1000 / items, 2),
        }


def cpu_reference_ms() -> float:
    """CPU milliseconds of a fixed pure-Python workload, best of 3: how fast this machine runs
    Python at the moment. CPU times measured on a shared machine compare only against it."""

    def work() -> int:
        counts: dict[str, int] = {}
        for i in range(200_000):
            key = f"k{i % 1000}"
            counts[key] = counts.get(key, 0) + i
        return len(counts)

    best = float("inf")
    for _ in range(3):
        began = time.process_time()
        work()
        best = min(best, time.process_time() - began)
    return round(best * 1000, 1)


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
