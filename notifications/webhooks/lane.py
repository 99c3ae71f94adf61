"""The webhook lane: a few threads that send webhooks, apart from the worker threads that
deliver notifications, so an endpoint that is slow, down or never answers costs delivery
nothing. They run in a process of their own beside each consumer (``manage.py run_webhooks``,
started by ``webhooks.tasks``), and in the tests' own process.

Each thread loops: are there new events (a read, at most every ``FAN_OUT_EVERY`` seconds in
one thread)? If so, make their deliveries (``outbox.fan_out``). Is anything due (a read)? If so, claim a batch of one endpoint's due
deliveries (``outbox.claim``), post each (``transport``), record them all at once
(``outbox.record``); else wait ``POLL_SECONDS``. A batch is as large as the endpoint answers
fast (about ``BATCH_SECONDS`` of its recent answer time, 1 to ``BATCH_MAX``), so a fast
endpoint costs few transactions and a slow one holds few deliveries at a time. At most
``per_endpoint`` threads of a process post to one endpoint at once: one that hangs can't take
every thread from the others. The first thread also sends ``campaign.finished`` for campaigns
that ended (every ``CAMPAIGN_EVERY`` seconds).

Stopping lets each thread finish the post it is in (at most ``NOTIFY_WEBHOOK_TIMEOUT``) and
gives its batch's untried deliveries back at once. A thread that dies leaves its batch to
its lease, after which another lane sends it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable

from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
)
from django.utils import timezone

from notifications.operations import metrics
from notifications.webhooks import outbox, payloads, signing, transport
from notifications.webhooks.models import WebhookDelivery

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
ERROR_WAIT_MAX = 60.0
CAMPAIGN_EVERY = 5.0
FAN_OUT_EVERY = 0.2
BATCH_SECONDS = 2.0
BATCH_MAX = 50
FIRST_GUESS = 0.1  # seconds an endpoint not heard from yet is taken to answer in


class Lane:
    """The webhook threads of one process: ``start()``, ``stop()``."""

    def __init__(
        self,
        threads: int,
        count: Callable[[str, float], None] = metrics.webhook_attempted,
    ) -> None:
        self.threads = threads
        self.count = count  # each post's outcome and seconds (a consumer's lane: its parent's)
        self.per_endpoint = max(1, threads // 2)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._busy: dict[int, int] = defaultdict(int)  # endpoint id → threads posting to it
        self._answer_time: dict[int, float] = {}  # endpoint id → recent answer time (s)
        self._running: list[threading.Thread] = []
        self._campaigns_checked = 0.0
        self._fanning = threading.Lock()
        self._fanned_at = 0.0

    # --- running ------------------------------------------------------------------------------
    def start(self) -> None:
        for n in range(self.threads):
            thread = threading.Thread(
                target=self._run, args=(n,), name=f"webhooks-{n + 1}", daemon=True
            )
            thread.start()
            self._running.append(thread)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the threads, waiting for each to finish its post and record it."""
        self._stopping.set()
        wait = settings.NOTIFY_WEBHOOK_TIMEOUT + 5 if timeout is None else timeout
        deadline = time.monotonic() + wait
        for thread in self._running:
            thread.join(max(deadline - time.monotonic(), 0.1))
        self._running.clear()

    def _run(self, n: int) -> None:
        session = transport.new_session(guarded=not settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE)
        tidied = 0.0
        failures = 0  # database errors in a row: the wait grows, the log stays quiet
        try:
            while not self._stopping.is_set():
                if time.monotonic() - tidied >= 1.0:  # at most once a second: it may reconnect
                    close_old_connections()
                    tidied = time.monotonic()
                wait = POLL_SECONDS
                try:
                    worked = self.step(session)
                    if n == 0:
                        self._check_campaigns()
                    failures = 0
                except DatabaseError as err:
                    # Down, restarting, or not migrated yet (a consumer started on new code
                    # before ``migrate``): try again less and less often, up to a minute.
                    failures += 1
                    wait = min(POLL_SECONDS * 2**failures, ERROR_WAIT_MAX)
                    if failures == 1 or (wait == ERROR_WAIT_MAX and failures % 10 == 0):
                        logger.warning(
                            "webhook lane: the database refused (%s); trying again in %g s",
                            " ".join(str(err).split())[:300],
                            wait,
                        )
                    if isinstance(err, (OperationalError, InterfaceError)):
                        connection.close()
                    worked = False
                except Exception:
                    logger.exception("webhook lane: unexpected error; going on")
                    worked = False
                if not worked:
                    self._stopping.wait(wait)
        finally:
            transport.close_session(session)
            connection.close()

    def _check_campaigns(self) -> None:
        if time.monotonic() - self._campaigns_checked >= CAMPAIGN_EVERY:
            self._campaigns_checked = time.monotonic()
            outbox.finish_campaigns()

    # --- one batch ----------------------------------------------------------------------------
    def _fan_out(self) -> int:
        """Fan new events out (``outbox.fan_out``): one thread at a time, at most every
        ``FAN_OUT_EVERY`` seconds, so that a stream of events costs a few write transactions a
        second, not one per thread and loop."""
        if time.monotonic() - self._fanned_at < FAN_OUT_EVERY:
            return 0
        if not self._fanning.acquire(blocking=False):
            return 0
        try:
            self._fanned_at = time.monotonic()
            return outbox.fan_out()
        finally:
            self._fanning.release()

    def _full(self) -> list[int]:
        with self._lock:
            return [pk for pk, n in self._busy.items() if n >= self.per_endpoint]

    def _batch_size(self, endpoint_id: int) -> int:
        """How many of an endpoint's deliveries one claim takes: about ``BATCH_SECONDS`` of
        its recent answers."""
        answer = self._answer_time.get(endpoint_id, FIRST_GUESS)
        return max(1, min(BATCH_MAX, int(BATCH_SECONDS / max(answer, 0.001))))

    def step(self, session: transport.Session) -> bool:
        """Fan new events out into deliveries, then claim, post and record one batch; False
        when there was nothing to do."""
        fanned = self._fan_out()
        full = self._full()
        first = outbox.next_endpoint(exclude=full)
        if first is None:
            return fanned > 0
        with self._lock:  # one claim at a time here, so the per-endpoint limit holds
            full = [pk for pk, n in self._busy.items() if n >= self.per_endpoint]
            batch = outbox.claim(self._batch_size, exclude=full, endpoint_id=first)
            if batch is None:
                return False
            self._busy[batch.endpoint.pk] += 1
        try:
            self._post_batch(session, batch)
        finally:
            with self._lock:
                self._busy[batch.endpoint.pk] -= 1
        return True

    def _post_batch(self, session: transport.Session, batch: outbox.Claim) -> None:
        endpoint = batch.endpoint
        tried, untried = [], []
        held = True
        for delivery in batch.deliveries:
            left = (batch.lease - timezone.now()).total_seconds()
            if held and left < settings.NOTIFY_WEBHOOK_TIMEOUT + 5:
                held = outbox.extend(batch)  # False: the lease lapsed and was taken over
            if self._stopping.is_set() or not held:
                untried.append(delivery)
                continue
            started = timezone.now()
            answer = self.post(session, delivery)
            tried.append((delivery, started, answer))
            self.count(answer.outcome, answer.duration_ms / 1000)
            self._learn(endpoint.pk, answer.duration_ms / 1000)
        outbox.record(batch, tried, untried)

    def _learn(self, endpoint_id: int, seconds: float) -> None:
        previous = self._answer_time.get(endpoint_id, seconds)
        self._answer_time[endpoint_id] = 0.7 * previous + 0.3 * seconds

    @staticmethod
    def post(session: transport.Session, delivery: WebhookDelivery) -> transport.Answer:
        """Sign and post one delivery with its endpoint's secrets as they are now."""
        event, endpoint = delivery.event, delivery.endpoint
        body = payloads.body(event)
        headers = signing.headers(
            event.message_id, int(time.time()), body, endpoint.signing_secrets()
        )
        return transport.post(session, endpoint.url, body, headers)
