"""The scenarios of status webhooks (``notifications.webhooks``): does an endpoint subscribed
to every event cost notification delivery anything, how far behind do its webhooks go, and
does an endpoint that answers in 5 s, or never, slow delivery down?

Registered in ``bench.scenarios.SCENARIOS`` as the others are (``bench/run.py`` imports this
module). The endpoints are ``bench/webhook_receiver.py`` processes on 127.0.0.1 (``fast``,
``slow``, ``silent``); the consumer runs with ``NOTIFY_WEBHOOK_ALLOW_PRIVATE=1`` so that it may
post to them, and every other webhook setting at its default (4 lane threads, 10 s timeout).
Each run starts with no endpoint, event or delivery left from the one before.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from typing import Any

from bench.harness import BASE_DIR, PROFILE_THREADS, QUICK, CpuMeter, free_port, percentile
from bench.scenarios import FAST, Result, _say, scenario
from bench.workbench import Bench

WEBHOOK_N = 1000 if QUICK else 10_000
WEBHOOK_THREADS = PROFILE_THREADS or 32
WEBHOOK_REPEATS = int(os.environ.get("BENCH_WEBHOOK_REPEATS") or (1 if QUICK else 2))
WEBHOOK_ENV = {**FAST, "NOTIFY_WEBHOOK_ALLOW_PRIVATE": "1"}
# BENCH_WEBHOOK_MODES=fast: only the endpoint that answers at once (and none), for a quick look.
MODES = tuple(m for m in os.environ.get("BENCH_WEBHOOK_MODES", "fast,slow,silent").split(",") if m)


class ReceiverProcess:
    """``bench/webhook_receiver.py`` in a process of its own."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, str(BASE_DIR / "bench" / "webhook_receiver.py"), str(self.port), mode],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                self.posts()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"the {mode} webhook receiver did not start") from None
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{self.mode}"

    def posts(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stats", timeout=5) as answer:
            return json.load(answer)["posts"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _clear_outbox() -> None:
    """No endpoint, event, delivery or watched campaign left (plain DELETEs: fast)."""
    from django.db import connection

    from notifications.webhooks.models import (
        CampaignWatch,
        WebhookAttempt,
        WebhookDelivery,
        WebhookEndpoint,
        WebhookEvent,
    )

    with connection.cursor() as cursor:
        for model in (
            WebhookAttempt,
            WebhookDelivery,
            WebhookEvent,
            CampaignWatch,
            WebhookEndpoint,
        ):
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")


def _subscribe(url: str) -> None:
    """An endpoint at ``url`` that wants every event (made as the admin would, but without
    the address check this process would apply: the consumer is told to allow 127.0.0.1)."""
    from notifications.webhooks.models import EventType, WebhookEndpoint
    from notifications.webhooks.signing import secret_make

    WebhookEndpoint.objects.create(
        url=url, description="bench", event_types=list(EventType.values), secret=secret_make()
    )


def _lag(timeout: float) -> Result:
    """Wait (up to ``timeout``) until every event is fanned out and no delivery waits; then
    p50/p95 from each event to its delivery, the deliveries by state, and tries beyond one."""
    from django.db.models import Count, Sum

    from notifications.webhooks import outbox
    from notifications.webhooks.models import WebhookDelivery

    deadline = time.monotonic() + timeout
    pending = WebhookDelivery.objects.filter(status="pending")
    unfanned = outbox.unfanned()
    while (pending.exists() or unfanned.exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    rows = WebhookDelivery.objects.filter(status="succeeded").values_list(
        "event__created_at", "finished_at"
    )
    lags = [(done - made).total_seconds() for made, done in rows]
    states = dict(WebhookDelivery.objects.values_list("status").annotate(n=Count("pk")))
    tries = WebhookDelivery.objects.aggregate(n=Sum("attempts"))["n"] or 0
    return {
        "lag_p50": round(percentile(lags, 0.5), 2),
        "lag_p95": round(percentile(lags, 0.95), 2),
        "lag_max": round(max(lags), 2) if lags else 0.0,
        "succeeded": states.get("succeeded", 0),
        "pending": states.get("pending", 0),
        "failed": states.get("failed", 0),
        "extra_tries": tries - sum(states.values()),
    }


def _send(bench: Bench, users: list[Any], receiver: ReceiverProcess | None) -> Result:
    """One bulk action on a notification for each of ``users``, WEBHOOK_THREADS threads,
    until the last is sent; with an endpoint at ``receiver`` subscribed to everything. For
    the ``fast`` endpoint the consumer then runs on until its lane has sent every webhook."""
    from notifications.webhooks.models import WebhookDelivery, WebhookEvent

    _clear_outbox()
    ids = bench.fresh(users)
    bench.telegram.reset()
    if receiver is not None:
        _subscribe(receiver.url)
    before = receiver.posts() if receiver else 0
    consumer = bench.consumer(WEBHOOK_THREADS, **WEBHOOK_ENV)
    try:
        cpu = CpuMeter([consumer.pid])
        started = bench.click(ids)
        bench.wait_sent(ids, 900, consumer)
        cpu.stop()
        row = {**bench.timings(ids, started), **cpu.per_item_ms(len(ids))}
        row["duplicates"] = bench.telegram.stats()["messages"] - len(ids)
        row["events"] = WebhookEvent.objects.count()
        row["webhooks_done_when_sent"] = WebhookDelivery.objects.exclude(status="pending").count()
        if receiver is not None and receiver.mode == "fast":
            row.update(_lag(300))
            row["posts"] = receiver.posts() - before
    finally:
        bench.stop([consumer])
        _clear_outbox()
    return row


def _median(runs: list[Result]) -> Result:
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    return {
        **{k: round(statistics.median(r[k] for r in runs), 2) for k in keys},
        "runs": [r["rate"] for r in runs],
    }


@scenario("sqlite", "pg")
def webhooks(bench: Bench) -> Result:
    """10,000 notifications with an endpoint subscribed to every event, against none: the
    send rate, and the webhooks' lag; then with an endpoint answering in 5 s, and one that
    never answers."""
    users = bench.telegram_users[:WEBHOOK_N]
    receivers = {mode: ReceiverProcess(mode) for mode in MODES}
    runs: dict[str, list[Result]] = {"plain": [], **{mode: [] for mode in MODES}}
    try:
        for _ in range(WEBHOOK_REPEATS):  # interleaved, so a change of load hits all alike
            runs["plain"].append(_send(bench, users, None))
            _say(bench, f"webhooks: no endpoint, {WEBHOOK_THREADS} threads", runs["plain"][-1])
            for mode in MODES:
                runs[mode].append(_send(bench, users, receivers[mode]))
                _say(bench, f"webhooks: {mode} endpoint", runs[mode][-1])
    finally:
        for receiver in receivers.values():
            receiver.stop()
    row: Result = {
        "n": WEBHOOK_N,
        "threads": WEBHOOK_THREADS,
        "repeats": WEBHOOK_REPEATS,
        **{name: _median(rows) for name, rows in runs.items()},
    }
    for mode in MODES:
        row[f"{mode}_share"] = round(row[mode]["rate"] / row["plain"]["rate"], 3)
    _say(bench, "webhooks", {k: v for k, v in row.items() if k.endswith("_share")})
    return row
