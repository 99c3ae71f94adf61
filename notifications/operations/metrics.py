"""The service's Prometheus metrics, and the few functions the delivery code calls to count.

This is the only module that holds ``prometheus_client`` metric objects; the rest of the
service reports through its functions (``notifications_created``, ``attempts_recorded``,
``receipt_recorded``, ``rate_limited``, ``telegram_stars``, ``paced_jobs_waiting``,
``suppression_added``, ``email_event``), called where those things happen. It imports nothing
of ours, so every layer may call it. Each call costs a few microseconds and no query; the gauges read from the database (due notifications, the oldest
one's age, live consumers) are computed at scrape time by ``operations.collectors``.

Multiprocess mode (gunicorn's workers and the consumers of one host writing one directory)
is prometheus_client's own: ``PROMETHEUS_MULTIPROC_DIR`` must be in the environment before
this module is first imported, which ``manage.py runservice`` arranges for its children
(docs/operations.md).
"""

from __future__ import annotations

import functools
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings
from prometheus_client import REGISTRY as REGISTRY  # where this process's metrics are
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# No ``*_created`` series beside each counter: they double the series and nothing here
# reads them.
disable_created_metrics()

# The labels of notify_notifications_created_total, each with how its value is read from
# (source, notification). A label is one line here, and every call site stays as it is.
_category_keys: dict[int, str] = {}


def category_key(notification: Any) -> str:
    """The key of a notification's category ("default" without one: the default category's
    rules apply to it), read from the few
    categories once per process and again when one appears that wasn't there: no query
    per notification."""
    pk = getattr(notification, "category_id", None)
    if pk is None:
        return "default"
    key = _category_keys.get(pk)
    if key is None:
        from django.apps import apps

        category = apps.get_model("preferences", "Category")
        _category_keys.update(category.objects.values_list("pk", "key"))
        key = _category_keys.setdefault(pk, "unknown")
    return key


CREATED_LABELS: dict[str, Callable[[str, Any], str]] = {
    "source": lambda source, notification: source,
    "category": lambda source, notification: category_key(notification),
}

# Outcomes recorded without calling a provider: no send duration.
_NOT_SENT = frozenset({"skipped", "deferred"})
# Seconds: a Telegram call takes ~0.05–0.5 s, SMTP ~0.05–2 s, an SMS gate up to the timeout.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

NOTIFICATIONS_CREATED = Counter(
    "notify_notifications_created",
    "Notifications created, by where they came from (admin, api, campaign, invite, test, "
    "orm, code) and their category's key.",
    tuple(CREATED_LABELS),
)
ATTEMPTS = Counter(
    "notify_attempts",
    "Delivery attempts recorded, by channel, transport and outcome.",
    ("channel", "transport", "outcome"),
)
SEND_DURATION = Histogram(
    "notify_send_duration_seconds",
    "Time from preparing a send to the provider's answer (pacing waits included), per "
    "channel; skipped and deferred attempts are not observed.",
    ("channel",),
    buckets=DURATION_BUCKETS,
)
RATE_LIMITED = Counter(
    "notify_rate_limited",
    "Provider answers asking us to slow down (HTTP 429, SMPP ESME_RTHROTTLED), by provider "
    "(the transport's name).",
    ("provider",),
)
SMS_SEGMENTS = Counter(
    "notify_sms_segments",
    "SMS segments of messages a provider accepted, by transport.",
    ("transport",),
)
SMS_COST = Counter(
    "notify_sms_cost",
    "What SMS providers charged, by transport, in the currency named by its label.",
    ("transport", "currency"),
)
TELEGRAM_STARS = Counter(
    "notify_telegram_stars",
    "Telegram Stars that paid broadcast spent: 0.1 for each message sent with "
    "allow_paid_broadcast that Telegram took, or whose outcome is unknown.",
)
RECEIPTS = Counter(
    "notify_receipts",
    "SMS delivery receipts received, by transport and outcome (delivered, undelivered, "
    "pending; repeated: the part was final already).",
    ("transport", "outcome"),
)
SUPPRESSIONS = Counter(
    "notify_suppressions",
    "Email addresses suppressed, by reason (hard_bounce, soft_bounces, complaint, rejected, "
    "unknown_mailbox, manual).",
    ("reason",),
)
EMAIL_EVENTS = Counter(
    "notify_email_events",
    "Email provider tracking events received (django-anymail's webhooks), by kind: "
    "delivered, hard_bounce, soft_bounce, complaint, rejected, or ignored.",
    ("kind",),
)
WEBHOOK_DELIVERIES = Counter(
    "notify_webhook_deliveries",
    "Webhook posts to client endpoints, by outcome (success, redirect, client_error, "
    "server_error, timeout, connection_error, refused).",
    ("outcome",),
)
WEBHOOK_DELIVERY_SECONDS = Histogram(
    "notify_webhook_delivery_seconds",
    "Time from posting a webhook to its endpoint's answer (or the error).",
    buckets=DURATION_BUCKETS,
)
PACED_JOBS_WAITING = Gauge(
    "notify_paced_jobs_waiting",
    "Jobs waiting in the consumers' paced lanes for their pacing slot.",
    multiprocess_mode="livesum",
)


@functools.cache
def _child(metric: Counter | Histogram, *labels: str) -> Counter | Histogram:
    """``metric.labels(*labels)``, kept: a few label sets, each looked up once, not per count."""
    return metric.labels(*labels)


class Attempt(Protocol):
    """What ``attempts_recorded`` reads of an attempt (a ``DeliveryAttempt``)."""

    channel: str
    transport: str
    outcome: str
    duration_ms: int
    segments: int | None
    cost: Decimal | None


def notifications_created(source: str, notifications: Iterable[Any]) -> None:
    """Count ``notifications`` (saved, or about to commit) as created by ``source``."""
    count_created(created_tally(source, notifications))


def created_tally(source: str, notifications: Iterable[Any]) -> list[tuple[tuple[str, ...], int]]:
    """How many of ``notifications`` each label set of ``notify_notifications_created``
    counts (a process that creates them for another, which counts them, sends this).
    The same object given many times (a campaign step's rows are its prototype, once for
    each of 10,000 recipients) has its labels read once: read per row, they were ~7% of a
    million-recipient campaign's creation, during which its database waited."""
    notifications = list(notifications)
    times = Tally(map(id, notifications))  # each alive in the list: its id is its own
    objects = {id(notification): notification for notification in notifications}
    tally: Tally[tuple[str, ...]] = Tally()
    for key, n in times.items():
        notification = objects[key]
        tally[tuple(read(source, notification) for read in CREATED_LABELS.values())] += n
    return list(tally.items())


def count_created(tally: Iterable[tuple[Iterable[str], int]]) -> None:
    """Count a ``created_tally``."""
    for labels, n in tally:
        _child(NOTIFICATIONS_CREATED, *labels).inc(n)


def attempts_recorded(attempts: Iterable[Attempt]) -> None:
    """Count a round's attempts once they are written: by channel, transport and outcome;
    the send's duration; for SMS, the segments accepted and what they cost."""
    for attempt in attempts:
        outcome = str(attempt.outcome)
        _child(ATTEMPTS, attempt.channel, attempt.transport, outcome).inc()
        if outcome in _NOT_SENT or not attempt.channel:  # not sent, or a lost round
            continue
        _child(SEND_DURATION, attempt.channel).observe(attempt.duration_ms / 1000)
        if attempt.channel != "sms":
            continue
        if outcome == "success" and attempt.segments:
            _child(SMS_SEGMENTS, attempt.transport).inc(attempt.segments)
        if attempt.cost:
            currency = settings.NOTIFY_SMS_CURRENCY
            _child(SMS_COST, attempt.transport, currency).inc(float(attempt.cost))


def telegram_stars(stars: Decimal) -> None:
    """Count the Stars of a flagged Telegram message Telegram took (or may have taken)."""
    TELEGRAM_STARS.inc(float(stars))


def receipt_recorded(transport: str, outcome: str) -> None:
    """Count one delivery receipt stored (``outcome``: its state, or "repeated")."""
    _child(RECEIPTS, transport, str(outcome)).inc()


def suppression_added(reason: str) -> None:
    """Count one email address suppressed (``reason``: a ``Suppression.Reason``)."""
    _child(SUPPRESSIONS, str(reason)).inc()


def email_event(kind: str) -> None:
    """Count one email provider tracking event stored (``kind``), or "ignored"."""
    _child(EMAIL_EVENTS, str(kind)).inc()


def rate_limited(provider: str) -> None:
    """Count one provider answer asking us to slow down (429, throttled)."""
    _child(RATE_LIMITED, provider).inc()


def paced_jobs_waiting(n: int) -> None:
    """How many jobs this process's paced lane holds now."""
    PACED_JOBS_WAITING.set(n)


def webhook_attempted(outcome: str, seconds: float) -> None:
    """Count one webhook post (``outcome``: a ``WebhookAttempt.Outcome``) and its time."""
    _child(WEBHOOK_DELIVERIES, str(outcome)).inc()
    WEBHOOK_DELIVERY_SECONDS.observe(seconds)
