"""The Django side of the harness, inside one tier's measuring process.

It drives the service only through its stable interfaces: the ``Notification`` and
``UserContact`` models, the bulk action's service (``notifications_queue``), the consumer
process (``manage.py run_huey -w N -k thread``, through ``notifications.tests.harness``) and
settings given as environment variables. Delivery, tasks and pacing internals are never
imported, so the same scenarios measure the pipeline before and after it is rewritten.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench.harness import (
    SMTP_TLS,
    TOKEN,
    WORK,
    CpuMeter,
    SmtpFake,
    TelegramFake,
    Tier,
    percentile,
    process_tree_cpu,
)
from notifications.tests.harness import Consumer

# A started consumer has settled when it and its children use under a tenth of a core for
# two half-second windows in a row (``Bench._wait_settled``).
SETTLE_WINDOW = 0.5
SETTLE_SHARE = 0.1
TELEGRAM_USERS = 10_000  # users with a Telegram chat (and no email address)
EMAIL_USERS = 3_000  # users with only an email address


@dataclass
class Run:
    """One click and its consumers: when it was clicked, what CPU the consumers used."""

    started: datetime
    cpu: CpuMeter


class Bench:
    """Users, notifications, the bulk action and consumers on one tier, with both fakes."""

    def __init__(self, tier: Tier, telegram: TelegramFake, smtp: SmtpFake) -> None:
        self.tier = tier
        self.telegram = telegram
        self.smtp = smtp
        self.smtp_ca_bundle = smtp.stats().get("ca_bundle") if SMTP_TLS else None
        self.click_seconds = 0.0  # how long the last ``click`` took
        os.environ.update(self.service_env(NOTIFY_TELEGRAM_RATE="0", NOTIFY_TELEGRAM_CHAT_RATE="0"))
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from notifications.models import UserContact

        call_command("migrate", verbosity=0)
        User = get_user_model()
        users = User.objects.bulk_create(
            [User(username=f"bench{i}", password="!") for i in range(TELEGRAM_USERS)],
            batch_size=2000,
        )
        mail_users = User.objects.bulk_create(
            [User(username=f"bench-mail{i}", password="!") for i in range(EMAIL_USERS)],
            batch_size=2000,
        )
        UserContact.objects.bulk_create(
            [UserContact(user=u, telegram_chat_id=str(5_000_000 + i)) for i, u in enumerate(users)]
            + [
                UserContact(user=u, email=f"bench{i}@example.com") for i, u in enumerate(mail_users)
            ],
            batch_size=2000,
        )
        self.telegram_users: list[Any] = users
        self.email_users: list[Any] = mail_users
        self.consumers_started = 0
        self.running: list[Consumer] = []  # consumers started and not stopped

    # --- settings -----------------------------------------------------------------------------
    def service_env(self, **extra: str) -> dict[str, str]:
        """Environment for a process of the service wired to the tier and both fakes."""
        email = {
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.smtp.port),
            "DEFAULT_FROM_EMAIL": "bench@example.com",
        }
        if self.smtp_ca_bundle:
            email.update(EMAIL_USE_TLS="1", SSL_CERT_FILE=self.smtp_ca_bundle)
        else:
            email.update(EMAIL_USE_TLS="0")  # the fake speaks plain SMTP unless asked
        return self.tier.env(
            TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=self.telegram.url, **email, **extra
        )

    # --- notifications --------------------------------------------------------------------------
    def fresh(self, users: Sequence[Any], status: str = "pending") -> list[int]:
        """Delete every notification, empty the queue, and create one per user in ``users``,
        in that order (so ids follow it); returns their ids."""
        from django.db import connection
        from django.utils import timezone
        from huey.contrib.djhuey import HUEY

        from notifications.models import Notification

        def empty(model: Any, cursor: Any) -> None:
            # Whatever refers to its rows (attempts, and what refers to them) goes first,
            # whatever its name; a reference to itself (a digest's items) goes with it.
            for related in model._meta.related_objects:
                if related.related_model is not model:
                    empty(related.related_model, cursor)
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")

        with connection.cursor() as cursor:
            empty(Notification, cursor)
        HUEY.flush()
        now = timezone.now()
        queued = {"queued_at": now, "next_attempt_at": now} if status == "queued" else {}
        created = Notification.objects.bulk_create(
            [
                Notification(user=u, message=f"bench {i}", status=status, **queued)
                for i, u in enumerate(users)
            ],
            batch_size=2000,
        )
        return [c.pk for c in created]

    def click(self, ids: Sequence[int]) -> datetime:
        """Click "Send selected" on ``ids``, as the admin's bulk action does; returns when."""
        from django.utils import timezone

        from notifications.models import Notification
        from notifications.operations import heartbeat
        from notifications.services import notifications_queue

        # Configured as a deployment is: NOTIFY_WORKERS is set for the consumers only; the
        # doorbells are sized from their heartbeats (about four per thread alive). The count
        # this process cached may be of the last scenario's consumers: read it afresh, as a
        # web process does within seconds of consumers coming or going.
        heartbeat.forget_live()
        started = timezone.now()
        notifications_queue(queryset=Notification.objects.filter(pk__in=list(ids)))
        self.click_seconds = round((timezone.now() - started).total_seconds(), 3)
        return started

    # --- consumers ------------------------------------------------------------------------------
    def consumer(self, threads: int, **env: str) -> Consumer:
        """A started ``manage.py run_huey -w threads -k thread`` (no other option, as
        ``make run``), with the service's settings plus ``env``."""
        self.consumers_started += 1
        log = WORK / f"consumer-{self.tier.name}-{self.consumers_started}-{threads}t.log"
        consumer = Consumer(self.service_env(**env), log, workers=threads, args=())
        self.running.append(consumer)
        consumer.start().wait_started()
        self._wait_heartbeat(consumer)
        self._wait_settled(consumer)
        return consumer

    @staticmethod
    def _wait_settled(consumer: Consumer, timeout: float = 15.0) -> None:
        """Until the consumer and the processes it started (its webhook lane) have finished
        starting: two windows of ``SETTLE_WINDOW`` in a row in which they used under
        ``SETTLE_SHARE`` of a core. A deployment's consumers came up long before anyone
        clicks; started just before a click, the lane's start-up (Django's, about a quarter
        of a core for its first seconds) would land in the measured run, where it took the
        CPU the sends need."""
        deadline = time.monotonic() + timeout
        quiet, last = 0, process_tree_cpu(consumer.pid)
        while quiet < 2 and time.monotonic() < deadline:
            time.sleep(SETTLE_WINDOW)
            now = process_tree_cpu(consumer.pid)
            quiet = quiet + 1 if now - last < SETTLE_WINDOW * SETTLE_SHARE else 0
            last = now

    @staticmethod
    def _wait_heartbeat(consumer: Consumer, timeout: float = 15.0) -> None:
        """Until the consumer's heartbeat is written (its first thread writes it as it
        starts): a web sizes doorbells from the consumers that have reported, as in a
        deployment, where they came up long before anyone clicks."""
        from notifications.operations.models import ConsumerHeartbeat

        deadline = time.monotonic() + timeout
        while not ConsumerHeartbeat.objects.filter(pid=consumer.pid).exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"consumer {consumer.pid} wrote no heartbeat in {timeout} s")
            time.sleep(0.05)

    def stop(self, consumers: Sequence[Consumer]) -> None:
        for consumer in consumers:
            consumer.stop(signal.SIGINT, timeout=20)
            if consumer in self.running:
                self.running.remove(consumer)

    # --- waiting and timing ------------------------------------------------------------------
    def sent_count(self, ids: Sequence[int]) -> int:
        from notifications.models import Notification

        return self._among(Notification.objects.filter(status="sent"), ids).count()

    @staticmethod
    def _among(queryset: Any, ids: Sequence[int]) -> Any:
        """``queryset`` narrowed to ``ids``: by range when they are consecutive (``fresh``
        makes them so), which the database reads without 2,000 parameters to parse, and the
        bench's polling takes less of the CPU the consumers are measured on."""
        if ids and max(ids) - min(ids) + 1 == len(set(ids)):
            return queryset.filter(pk__range=(min(ids), max(ids)))
        return queryset.filter(pk__in=list(ids))

    def wait_sent(
        self,
        ids: Sequence[int],
        timeout: float,
        consumer: Consumer | None = None,
        probe: Callable[[int], None] | None = None,
        soft: bool = False,
    ) -> int:
        """Wait until every one of ``ids`` is sent; returns how many are.

        Past ``timeout`` raises ``RuntimeError`` (with the consumer's log), or with ``soft``
        returns the count reached.
        """
        deadline = time.monotonic() + timeout
        while (count := self.sent_count(ids)) < len(ids):
            if probe:
                probe(count)
            if time.monotonic() > deadline:
                if soft:
                    return count
                log = consumer.output()[-3000:] if consumer else ""
                raise RuntimeError(f"only {count}/{len(ids)} sent in {timeout}s\n{log}")
            time.sleep(0.1)
        return count

    def click_and_wait(self, ids: Sequence[int], consumers: list[Consumer], timeout: float) -> Run:
        """Click "Send selected" on ``ids``, wait until all are sent, stop the consumers."""
        try:
            cpu = CpuMeter([c.pid for c in consumers])
            started = self.click(ids)
            self.wait_sent(ids, timeout, consumers[0])
            cpu.stop()
        finally:
            self.stop(consumers)
        return Run(started, cpu)

    def sent_offsets(self, ids: Sequence[int], started: datetime) -> list[float]:
        """Seconds from ``started`` to each sent notification's ``sent_at``, in order."""
        from notifications.models import Notification

        rows = Notification.objects.filter(pk__in=list(ids), sent_at__isnull=False)
        return sorted(
            (sent - started).total_seconds() for sent in rows.values_list("sent_at", flat=True)
        )

    def finished(self, ids: Sequence[int], started: datetime) -> float:
        """Seconds from ``started`` to the last ``sent_at`` among ``ids``."""
        offsets = self.sent_offsets(ids, started)
        return round(offsets[-1], 2) if offsets else 0.0

    def timings(self, ids: Sequence[int], started: datetime) -> dict[str, float]:
        """Rate from the click to the last ``sent``, and p50/p95 queued → sent."""
        from notifications.models import Notification

        rows = self._among(Notification.objects.all(), ids).values_list("queued_at", "sent_at")
        latencies = [(sent - queued).total_seconds() for queued, sent in rows if sent and queued]
        offsets = sorted((sent - started).total_seconds() for _, sent in rows if sent)
        elapsed = round(offsets[-1], 2) if offsets else 0.0
        return {
            "n": len(ids),
            "seconds": elapsed,
            "rate": round(len(ids) / elapsed, 1) if elapsed else 0.0,
            "p50": round(percentile(latencies, 0.5), 2),
            "p95": round(percentile(latencies, 0.95), 2),
            # Where the time outside the steady sending went: click → first send, and the
            # last twentieth of the sends (a steady rate spends a twentieth of the run on it).
            "click": self.click_seconds,
            "first": round(offsets[0], 2) if offsets else 0.0,
            "last_5pct": round(offsets[-1] - percentile(offsets, 0.95), 2) if offsets else 0.0,
        }

    def channels(self, ids: Sequence[int]) -> dict[str, int]:
        """How many of ``ids`` went through each channel ("" for not delivered)."""
        from collections import Counter

        from notifications.models import Notification

        rows = Notification.objects.filter(pk__in=list(ids)).values_list("channel", flat=True)
        return dict(Counter(rows))
