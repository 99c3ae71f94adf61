"""The suite's pytest plugin (the root ``conftest.py`` loads it, so the tests of every package
see it): fake providers on 127.0.0.1, the real huey consumer in a process of its own, users."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.utils import translation

from notifications import pacing
from notifications.channels import all_senders
from notifications.models import Notification, UserContact
from notifications.operations import heartbeat
from notifications.senders.base import PartResult, Sender
from notifications.senders.http import reset_http_session
from notifications.senders.sms_smpp import close_sessions
from notifications.tests.api_client import *  # noqa: F403 (HTTP API fixtures: keys, client)
from notifications.tests.browser import *  # noqa: F403 (browser fixtures: Playwright)
from notifications.tests.fake_clients import Receiver, plain_session
from notifications.tests.fakes.smpp import FakeSmpp
from notifications.tests.fakes.smsaero import FakeSmsAero
from notifications.tests.fakes.smtp import FakeSmtp
from notifications.tests.fakes.telegram import FakeTelegram
from notifications.tests.harness import Consumer, service_environ

BASE_DIR = Path(settings.BASE_DIR)


def _flush_by_delete(original: Callable) -> Callable:
    """PostgreSQL's ``sql_flush`` for the tests: ``DELETE FROM`` each table instead of one
    ``TRUNCATE`` of them all. A transactional test empties every table after it, and with a
    few rows in each, TRUNCATE's fixed cost per table (~0.1 s for the forty, several times
    that while CI runs two suites) was most of such a test's teardown. The foreign keys are
    deferrable and checked at the flush's commit, and no table has a DELETE trigger."""

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if not tables or reset_sequences:
            return original(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        quote = self.quote_name
        return ["SET CONSTRAINTS ALL DEFERRED"] + [f"DELETE FROM {quote(t)}" for t in tables]

    return sql_flush


def pytest_configure(config: pytest.Config) -> None:
    from django.db.backends.postgresql.operations import DatabaseOperations

    DatabaseOperations.sql_flush = _flush_by_delete(DatabaseOperations.sql_flush)


@pytest.fixture(scope="session", autouse=True)
def _remove_test_queue_file() -> Iterator[None]:
    """The SQLite queue file of this test run goes when the run ends."""
    yield
    if settings.QUEUE_URL.startswith("sqlite:///"):
        path = Path(settings.QUEUE_URL.removeprefix("sqlite:///"))
        path = path if path.is_absolute() else BASE_DIR / path
        for leftover in path.parent.glob(path.name + "*"):
            leftover.unlink(missing_ok=True)


@pytest.fixture(scope="session", autouse=True)
def _compiled_catalogue() -> None:
    """The Russian catalogue compiled, as ``make test`` does, so that a plain ``pytest`` sees
    the same translations (the bot's replies, the admin in Russian)."""
    call_command("compile_translations")
    translation.trans_real._translations.clear()  # read the freshly compiled catalogue


@pytest.fixture(autouse=True)
def _free_pace() -> None:
    """Each test starts from a free pace, no provider paused. The database's schedule is
    emptied with each test; Redis's outlived it, and a 429 test's pause turned a later test's
    wait for its slot into a refusal (``test_cancel`` after ``test_tasks``, PostgreSQL + Redis)."""
    if isinstance(pacing.HUEY.storage, pacing.RedisStorage):
        client = pacing.HUEY.storage.conn
        for prefix in (pacing.KEY_PREFIX, pacing.PAUSE_PREFIX):
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)


@pytest.fixture(autouse=True)
def _no_cached_consumer_count() -> Iterator[None]:
    """Each test counts the live consumers' workers afresh (``heartbeat.live_workers``
    caches the count for a few seconds per process)."""
    heartbeat.forget_live()
    yield
    heartbeat.forget_live()


@pytest.fixture(autouse=True)
def _real_mail_backend(settings) -> Iterator[None]:
    """pytest-django swaps in the in-memory mail backend; the service sends through the
    configured one (SMTP by default), to the fake servers. Connections kept by senders
    are closed after each test."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    yield
    for sender in all_senders():
        mailer = getattr(sender, "mailer", None)
        if mailer is not None:
            mailer.close()
    close_sessions()


def send_with(sender: Sender, notification: Notification, contact: UserContact) -> list[PartResult]:
    """What delivery does with one transport, without the chain: prepare, then every part."""
    prepared = sender.prepare(notification, contact)
    return [sender.send_part(prepared, index) for index in range(len(prepared.parts))]


@pytest.fixture(scope="session")
def telegram_server() -> Iterator[FakeTelegram]:
    fake = FakeTelegram().start()
    yield fake
    fake.stop()


@pytest.fixture
def telegram(telegram_server: FakeTelegram) -> FakeTelegram:
    telegram_server.reset()
    return telegram_server


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[FakeSmtp]:
    fake = FakeSmtp().start()
    yield fake
    fake.stop()


@pytest.fixture
def smtp(smtp_server: FakeSmtp) -> FakeSmtp:
    smtp_server.reset()
    return smtp_server


def database_url() -> str:
    """A URL for the database the tests run on (pytest-django's test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    host = db["HOST"] or "127.0.0.1"
    port = db["PORT"] or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


def wait_for(
    condition: Callable[[], object],
    timeout: float = 30,
    what: str | Callable[[], str] = "condition",
):
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds.
    ``what`` may be a function, called then: the state at the timeout, not at the start."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {timeout}s waiting for {what() if callable(what) else what}"
            )
        time.sleep(0.1)


def wait_for_status(
    notification: Notification, statuses: set[str] | str, timeout: float = 60
) -> Notification:
    wanted = {statuses} if isinstance(statuses, str) else statuses

    def reached() -> Notification | None:
        notification.refresh_from_db()
        return notification if notification.status in wanted else None

    wait_for(reached, timeout, f"notification {notification.pk} to become {'/'.join(wanted)}")
    return notification


@pytest.fixture
def consumer_env(telegram_server: FakeTelegram, smtp_server: FakeSmtp, transactional_db) -> dict:
    """Environment for a consumer wired to the fakes, the test database and the test queue."""
    return service_environ(
        database_url(),
        settings.QUEUE_URL,
        TELEGRAM_BOT_TOKEN=telegram_server.token,
        TELEGRAM_API_URL=telegram_server.url,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_server.port),
        EMAIL_USE_TLS="0",
        SMS_SMTP_USE_TLS="0",
        DEFAULT_FROM_EMAIL="service@example.com",
        NOTIFY_HTTP_TIMEOUT="1",
        EMAIL_TIMEOUT="2",
        NOTIFY_RETRY_BASE_SECONDS="1",
        NOTIFY_RETRY_MAX_SECONDS="2",
        NOTIFY_MAX_ROUNDS="3",
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def start_consumer(
    request: pytest.FixtureRequest, consumer_env: dict, tmp_path: Path
) -> Iterator[Callable[..., Consumer]]:
    """Start one or more consumers: ``start_consumer(EMAIL_HOST="", workers=2)``. When the
    test fails, their logs' last lines are printed with it."""
    from huey.contrib.djhuey import HUEY

    HUEY.flush()
    started: list[Consumer] = []

    def start(workers: int = 4, **overrides: str) -> Consumer:
        log = tmp_path / f"consumer{len(started) + 1}.log"
        consumer = Consumer({**consumer_env, **overrides}, log, workers=workers).start()
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        consumer.stop()
    HUEY.flush()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for n, consumer in enumerate(started, start=1):
            tail = "\n".join(consumer.output().splitlines()[-60:])
            print(f"\n--- consumer {n} log (last lines) ---\n{tail}")


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    """A user with the given contact fields (the contact itself comes from the signal)."""
    counter = iter(range(1, 10_000))

    def make(email: str = "", **contact_fields) -> object:
        n = next(counter)
        user = get_user_model().objects.create_user(username=f"user{n}", email=email)
        if contact_fields:
            UserContact.objects.filter(user=user).update(**contact_fields)
        return user

    return make


# --- SMS: the SMS Aero gate (HTTPS and plain HTTP), its SMTP gateway, an SMPP server ---------
@pytest.fixture(scope="session")
def smsaero_server() -> Iterator[FakeSmsAero]:
    fake = FakeSmsAero(tls=True).start()
    yield fake
    fake.stop()


@pytest.fixture
def smsaero(smsaero_server: FakeSmsAero, monkeypatch: pytest.MonkeyPatch) -> FakeSmsAero:
    """The HTTPS gate, its test certificate trusted by requests for this test."""
    smsaero_server.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(smsaero_server.ca_bundle))
    reset_http_session()
    return smsaero_server


@pytest.fixture(scope="session")
def smsaero_http_server() -> Iterator[FakeSmsAero]:
    fake = FakeSmsAero(tls=False).start()
    yield fake
    fake.stop()


@pytest.fixture
def smsaero_http(smsaero_http_server: FakeSmsAero) -> FakeSmsAero:
    smsaero_http_server.reset()
    return smsaero_http_server


@pytest.fixture(scope="session")
def sms_smtp_server() -> Iterator[FakeSmtp]:
    fake = FakeSmtp(username="smtp", password="sms-smtp-pw").start()
    yield fake
    fake.stop()


@pytest.fixture
def sms_smtp(sms_smtp_server: FakeSmtp) -> FakeSmtp:
    sms_smtp_server.reset()
    return sms_smtp_server


@pytest.fixture(scope="session")
def smpp_server() -> Iterator[FakeSmpp]:
    fake = FakeSmpp().start()
    yield fake
    fake.stop()


@pytest.fixture
def smpp(smpp_server: FakeSmpp) -> FakeSmpp:
    """The SMSC, with no connection left from an earlier test: one its client closed a moment
    ago would still count as bound and could take this test's receipts."""
    smpp_server.close_connections()
    smpp_server.reset()
    return smpp_server


@pytest.fixture
def sms_env(smsaero: FakeSmsAero, sms_smtp: FakeSmtp, smpp: FakeSmpp) -> dict[str, str]:
    """Settings (as environment variables) wiring all three SMS transports to the fakes."""
    return {
        "SMSAERO_EMAIL": smsaero.email,
        "SMSAERO_API_KEY": smsaero.api_key,
        "SMSAERO_SIGN": "NotifySvc",
        "SMSAERO_API_URL": smsaero.url,
        "REQUESTS_CA_BUNDLE": str(smsaero.ca_bundle),
        "SMS_SMTP_HOST": "127.0.0.1",
        "SMS_SMTP_PORT": str(sms_smtp.port),
        "SMS_SMTP_USER": sms_smtp.username,
        "SMS_SMTP_PASSWORD": sms_smtp.password,
        "SMS_SMTP_FROM": "owner@example.com",
        "SMS_SMTP_ADDRESS": "{digits}@sms.example.net",
        "SMPP_HOST": "127.0.0.1",
        "SMPP_PORT": str(smpp.port),
        "SMPP_SYSTEM_ID": smpp.system_id,
        "SMPP_PASSWORD": smpp.password,
        "SMPP_SOURCE_ADDR": "NotifySvc",
        "SMPP_TIMEOUT": "2",
    }


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A plain ``requests`` session (no retries, no environment proxies) for talking to a fake."""
    with plain_session() as session:
        yield session


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP server that records what a fake posts to it (webhooks, callbacks)."""
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def rung(monkeypatch: pytest.MonkeyPatch) -> list:
    """Doorbells recorded as (ids, eta), not rung: the test delivers in its own process."""
    from notifications import tasks

    calls: list = []
    monkeypatch.setattr(
        tasks, "ring", lambda ids, eta=None, size=None: calls.append((sorted(ids), eta))
    )
    return calls
