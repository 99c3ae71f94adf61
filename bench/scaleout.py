"""``make scaleout``: the scale-out tier proven across hosts, built on this one machine.

Network namespaces (``ip netns``, veth pairs on a bridge in a namespace of its own; needs
root) make six hosts on 10.77.0.0/24, and nothing they say leaves them:

======== =========== ====================================================================
host     address     runs
======== =========== ====================================================================
db       10.77.0.2   a fresh PostgreSQL cluster and Redis, bound to that address only
web      10.77.0.3   gunicorn (the admin the operator clicks), and this driver
c1…c3    10.77.0.11… a consumer each (``manage.py run_huey``, 8 threads)
fakes    10.77.0.20  the fake Telegram Bot API, enforcing a per-bot limit (429 above it)
======== =========== ====================================================================

The operator logs in to the web host's admin over HTTP and sends one message to all 20,000
users ("everyone matching the filter": the consumers create the campaign). Halfway through,
consumer c1's link is cut (``ip link set … down``) and consumer c2 is SIGKILLed; once c1's
leases have been taken over, its link comes back. It then shows, and exits 1 unless:

- every notification is final (sent);
- duplicates (a chat that got the message twice) ≤ the notifications in flight at the cut;
- the bot's limit held across the hosts: the fake answered 0 self-caused 429s;
- the cut host, back, sent nothing twice: every duplicate's first copy went out from c1 or
  c2 by the cut (in flight there: its answer, or its record, was lost; c1's kernel delivers
  a request it held when the link went down once the link is back); none is a copy sent
  after the cut by another host and again by c1's stale work once its link came back.

It prints a table of sends per host (the fake records each message's source address).
Everything it starts it stops, and the namespaces go with it (``ip netns pids`` kills any
process left in them). ``SCALEOUT_USERS`` changes the 20,000.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

from bench.harness import service_environ  # noqa: E402 (after the path)
from notifications.tests.harness import Consumer  # noqa: E402

NS = "nsvc-"
SWITCH = f"{NS}switch"
NET = "10.77.0"
HOSTS = {"db": 2, "web": 3, "c1": 11, "c2": 12, "c3": 13, "fakes": 20}
CONSUMERS = ("c1", "c2", "c3")
USERS = int(os.environ.get("SCALEOUT_USERS") or 20_000)
THREADS = 8
TELEGRAM_RATE = 250  # NOTIFY_TELEGRAM_RATE: the pace all consumers share, through Redis
FAKE_LIMIT = 300  # the fake answers 429 beyond this many messages in any second
LEASE_SECONDS = 15
TOKEN = "123456:SCALEOUT-token"
ADMIN_PASSWORD = "scaleout-admin-password"
PG_BIN = next(Path("/usr/lib/postgresql").glob("*/bin"), Path("/usr/bin"))
TIMEOUT = 600.0


def address(host: str) -> str:
    return f"{NET}.{HOSTS[host]}"


def sh(*args: str, check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, check=check, text=True, capture_output=quiet, stdin=subprocess.DEVNULL
    )


def on(host: str, *args: str) -> list[str]:
    """``args`` run on ``host``."""
    return ["ip", "netns", "exec", f"{NS}{host}", *args]


# --- the network ------------------------------------------------------------------------------


def build_network() -> None:
    sh("ip", "netns", "add", SWITCH)
    sh(*on("switch", "ip", "link", "add", "br0", "type", "bridge"))
    sh(*on("switch", "ip", "link", "set", "br0", "up"))
    for host in HOSTS:
        sh("ip", "netns", "add", f"{NS}{host}")
        sh(
            "ip", "link", "add", f"to-{host}", "netns", SWITCH, "type", "veth",
            "peer", "name", "eth0", "netns", f"{NS}{host}",
        )  # fmt: skip
        sh(*on("switch", "ip", "link", "set", f"to-{host}", "master", "br0", "up"))
        sh(*on(host, "ip", "addr", "add", f"{address(host)}/24", "dev", "eth0"))
        sh(*on(host, "ip", "link", "set", "eth0", "up"))
        sh(*on(host, "ip", "link", "set", "lo", "up"))


def link(host: str, state: str) -> None:
    """Cut (``down``) or restore (``up``) ``host``'s only link, at the switch."""
    sh(*on("switch", "ip", "link", "set", f"to-{host}", state))


def tear_down_network() -> None:
    for name in [*(f"{NS}{h}" for h in HOSTS), SWITCH]:
        pids = sh("ip", "netns", "pids", name, check=False, quiet=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        sh("ip", "netns", "del", name, check=False, quiet=True)


# --- the hosts' services ----------------------------------------------------------------------


class Hosts:
    """What runs on the hosts, started and stopped by the driver (on the web host)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.processes: list[subprocess.Popen] = []
        self.consumers: dict[str, Consumer] = {}
        self.database_url = f"postgres://postgres@{address('db')}:5432/notify"
        self.queue_url = f"redis://{address('db')}:6379/0"
        self.telegram_url = f"http://{address('fakes')}:8081"

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.work / f"{name}.log").open("w")
        self.processes.append(
            subprocess.Popen(
                args,
                cwd=BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )

    def env(self, **extra: str) -> dict[str, str]:
        return service_environ(
            self.database_url,
            self.queue_url,
            self.work / "var",
            DJANGO_SECRET_KEY="scaleout-secret-key-not-for-production-0123456789",
            DJANGO_ALLOWED_HOSTS=address("web"),
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=self.telegram_url,
            TELEGRAM_UPDATES="off",
            NOTIFY_TELEGRAM_RATE=str(TELEGRAM_RATE),
            NOTIFY_LEASE_SECONDS=str(LEASE_SECONDS),
            NOTIFY_SWEEP_STALE_SECONDS="10",
            NOTIFY_HTTP_TIMEOUT="5",
            **extra,
        )

    def start_database(self) -> None:
        data, sockets = self.work / "pg", self.work / "pg-sockets"
        for folder in (data, sockets):
            folder.mkdir()
            shutil.chown(folder, "postgres", "postgres")
        sh(
            "runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(data),
            "-A", "trust", "-U", "postgres", quiet=True,
        )  # fmt: skip
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {NET}.0/24 trust\n")
        self.spawn(
            "postgresql",
            on(
                "db", "runuser", "-u", "postgres", "--", str(PG_BIN / "postgres"), "-D",
                str(data), "-c", f"listen_addresses={address('db')}", "-c",
                f"unix_socket_directories={sockets}", "-c", "max_connections=300",
            ),
        )  # fmt: skip
        self.spawn(
            "redis",
            on(
                "db", "redis-server", "--bind", address("db"), "--port", "6379", "--save", "",
                "--appendonly", "no", "--protected-mode", "no",
            ),
        )  # fmt: skip
        wait_for(
            lambda: (
                sh(
                    str(PG_BIN / "pg_isready"), "-h", address("db"), check=False, quiet=True
                ).returncode
                == 0
            ),
            60,
            "PostgreSQL on the db host",
        )
        sh(str(PG_BIN / "createdb"), "-h", address("db"), "-U", "postgres", "notify")

    def start_fakes(self) -> None:
        self.spawn(
            "telegram",
            on(
                "fakes", sys.executable, "-m", "notifications.tests.fakes.telegram",
                "--host", address("fakes"), "--port", "8081", "--token", TOKEN,
                "--rate-limit", str(FAKE_LIMIT), "--record-peers",
            ),
        )  # fmt: skip
        wait_for(lambda: telegram("/_fake/stats") is not None, 30, "the fake Telegram")

    def start_web(self) -> None:
        self.spawn(
            "web",
            [
                sys.executable, "-m", "gunicorn", "notification_service.wsgi",
                "--bind", f"{address('web')}:8000", "--workers", "2",
            ],
            self.env(),
        )  # fmt: skip

    def start_consumer(self, host: str) -> None:
        consumer = Consumer(
            self.env(NOTIFY_WORKERS=str(THREADS)),
            self.work / f"consumer-{host}.log",
            workers=THREADS,
            args=(),
            prefix=on(host),
        )
        self.consumers[host] = consumer.start().wait_started()

    def stop(self) -> None:
        for consumer in self.consumers.values():
            consumer.stop(signal.SIGINT, timeout=20)
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_for(check, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")


def telegram(path: str):
    import requests

    try:
        return requests.get(f"http://{address('fakes')}:8081{path}", timeout=10).json()
    except requests.RequestException:
        return None


# --- the run ------------------------------------------------------------------------------------


def click(web: str) -> None:
    """The operator: log in to the admin and send one message to every user."""
    import requests

    session = requests.Session()
    login = session.get(f"{web}/admin/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    answer = session.post(
        f"{web}/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": token, "username": "admin", "password": ADMIN_PASSWORD},
        headers={"Referer": f"{web}/admin/login/"},
        timeout=30,
    )
    answer.raise_for_status()
    users = session.get(f"{web}/admin/auth/user/", timeout=60)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', users.text).group(1)
    first = re.search(r'name="_selected_action" value="(\d+)"', users.text).group(1)
    sent = session.post(
        f"{web}/admin/auth/user/",
        data={
            "csrfmiddlewaretoken": token,
            "action": "send_notification",
            "select_across": "1",
            "index": "0",
            "_selected_action": [first],
            "_compose": "1",
            "_send": "1",
            "name": "Scale-out proof",
            "message": "One message to every user, across hosts",
            "subject": "",
            "context": "",
            "channels": ["telegram"],
            "send_at_0": "",
            "send_at_1": "",
        },
        headers={"Referer": f"{web}/admin/auth/user/"},
        timeout=120,
        allow_redirects=False,
    )
    if sent.status_code != 302 or "/campaign/" not in sent.headers.get("Location", ""):
        raise RuntimeError(f"the campaign was not started: {sent.status_code} {sent.text[:500]}")


def drive(work: Path) -> int:
    """On the web host: start every service, run the campaign, cut, kill, check, report."""
    hosts = Hosts(work)
    (work / "var").mkdir(exist_ok=True)
    try:
        hosts.start_database()
        hosts.start_fakes()
        os.environ.update(hosts.env())
        sh(sys.executable, "manage.py", "migrate", "--verbosity", "0")
        import django

        django.setup()
        from django.contrib.auth import get_user_model

        from notifications.models import Notification, UserContact

        User = get_user_model()
        User.objects.create_superuser("admin", "admin@example.com", ADMIN_PASSWORD)
        users = User.objects.bulk_create(
            [User(username=f"u{i:05}") for i in range(USERS)], batch_size=5000
        )
        UserContact.objects.bulk_create(
            [UserContact(user=u, telegram_chat_id=str(7_000_000 + u.pk)) for u in users],
            batch_size=5000,
            ignore_conflicts=True,
        )
        UserContact.objects.filter(user__username="admin").update(telegram_chat_id="")
        hosts.start_web()
        for host in CONSUMERS:
            hosts.start_consumer(host)
        web = f"http://{address('web')}:8000"
        wait_for(lambda: _ok(f"{web}/readyz"), 60, "the web host's /readyz")
        started = time.monotonic()
        click(web)
        print(f"clicked: {USERS:,} users, consumers on {', '.join(CONSUMERS)}", flush=True)

        def sent() -> int:
            return (telegram("/_fake/stats") or {}).get("messages", 0)

        wait_for(lambda: sent() >= USERS // 2, TIMEOUT, "half the messages", every=0.05)
        in_flight = Notification.objects.filter(status="sending").count()
        link("c1", "down")
        hosts.consumers["c2"].process.send_signal(signal.SIGKILL)
        cut_at, cut_clock, sent_at_cut = time.monotonic(), time.time(), sent()
        print(f"cut c1's link, killed c2: {sent_at_cut:,} sent, {in_flight} in flight", flush=True)

        final = ("sent", "failed", "expired", "cancelled", "suppressed")

        def remaining() -> int:
            return (
                Notification.objects.filter(campaign__isnull=False).exclude(status__in=final)
            ).count()

        time.sleep(LEASE_SECONDS + 5)  # c1's leases expire; the others take its work
        link("c1", "up")
        up_clock = time.time()
        print(f"c1's link back after {time.monotonic() - cut_at:.0f} s", flush=True)
        wait_for(
            lambda: (
                Notification.objects.filter(campaign__isnull=False).count() == USERS
                and remaining() == 0
            ),
            TIMEOUT,
            "every notification final",
            every=1,
        )
        finished = time.monotonic()
        time.sleep(LEASE_SECONDS)  # the cut host's stale work, had it any, would send now
        data = telegram("/_fake/messages")
        messages = data["messages"]
        statuses = Counter(
            Notification.objects.filter(campaign__isnull=False).values_list("status", flat=True)
        )
        return report(
            messages,
            statuses,
            in_flight,
            (cut_clock, up_clock),
            data["too_many"],
            finished - started,
        )
    finally:
        hosts.stop()


def _ok(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


# A send on the wire when its host was cut or killed reaches the fake by then, or within the
# HTTP timeout (NOTIFY_HTTP_TIMEOUT) if it was slow to be answered. One that c1 wrote as its
# link went down waits in c1's kernel, which retransmits it once the link is back: it reaches
# the fake within as long of the link coming up (c1 gave up on its answer after the timeout
# and retries it: the "maybe sent" window of a Telegram send).
ON_THE_WIRE = 5.0


def duplicates_of(messages: list[dict], cut_clock: float, up_clock: float) -> tuple[int, list[str]]:
    """Messages beyond the first to any chat, and each one a host's in-flight work at the cut
    does not explain: its first copy went out from another host, or long before the cut, or
    long after it (c2's) or after c1's link came back (c1's, ``up_clock``)."""
    copies: dict[str, list[dict]] = {}
    for message in messages:
        copies.setdefault(message["chat_id"], []).append(message)
    extra, unexplained = 0, []
    for chat, sent in copies.items():
        if len(sent) < 2:
            continue
        extra += len(sent) - 1
        first = min(sent, key=lambda m: m["at"])
        last_arrival = {address("c1"): up_clock, address("c2"): cut_clock}.get(first["peer"])
        in_flight = (
            last_arrival is not None
            and cut_clock - ON_THE_WIRE <= first["at"] <= last_arrival + ON_THE_WIRE
        )
        if not in_flight:
            unexplained.append(
                f"chat {chat}: "
                + ", ".join(f"{m['peer']} at cut{m['at'] - cut_clock:+.1f}s" for m in sent)
            )
    return extra, unexplained


def report(
    messages: list[dict],
    statuses: Counter,
    in_flight: int,
    clocks: tuple[float, float],
    too_many: int,
    seconds: float,
) -> int:
    cut_clock, up_clock = clocks  # c1's link cut, and back (time.time())
    duplicates, unexplained = duplicates_of(messages, cut_clock, up_clock)
    by_peer = Counter(m.get("peer", "?") for m in messages)
    names = {address(h): h for h in HOSTS}
    print()
    print("| host | what happened | messages sent |")
    print("|---|---|---|")
    fate = {"c1": "link cut halfway, back later", "c2": "SIGKILLed halfway", "c3": "ran through"}
    for peer, count in sorted(by_peer.items()):
        host = names.get(peer, peer)
        print(f"| {host} ({peer}) | {fate.get(host, '')} | {count:,} |")
    print(f"| all | {seconds:.0f} s from the click to the last final | {len(messages):,} |")
    checks = {
        f"every notification final and sent ({dict(statuses)})": statuses
        == Counter({"sent": USERS}),
        f"duplicates {duplicates} ≤ in flight at the cut {in_flight}": duplicates <= in_flight,
        f"429s answered by the fake: {too_many}": too_many == 0,
        "every duplicate was in flight on c1 or c2 at the cut; the cut host, back, sent "
        f"nothing twice ({len(unexplained)} otherwise)": not unexplained,
    }
    for line in unexplained:
        print(f"  unexplained duplicate: {line}")
    print()
    for what, held in checks.items():
        print(f"{'ok  ' if held else 'FAIL'} {what}")
    return 0 if all(checks.values()) else 1


def main() -> int:
    if os.geteuid() != 0:
        print("make scaleout needs root (ip netns); CI runs as root", file=sys.stderr)
        return 2
    if "--drive" in sys.argv:
        return drive(Path(sys.argv[sys.argv.index("--drive") + 1]))
    work = Path(tempfile.mkdtemp(prefix="scaleout-"))
    os.chmod(work, 0o755)  # PostgreSQL's user reaches its data directory inside
    tear_down_network()  # what an interrupted run left
    try:
        build_network()
        return subprocess.run(
            on("web", sys.executable, str(Path(__file__).resolve()), "--drive", str(work)),
            cwd=BASE_DIR,
        ).returncode
    finally:
        tear_down_network()
        if os.environ.get("SCALEOUT_KEEP"):
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
