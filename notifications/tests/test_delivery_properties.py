"""Property-based test of the delivery pipeline (Hypothesis).

Senders whose every call does what Hypothesis draws (success, each kind of DeliveryError,
an arbitrary exception, a slow call), over messages of one to three parts, on three
channels: Telegram and email (free) and SMS with two paid transports. The real pipeline
(claim → chain → record, rounds driven like a consumer would) must keep, for every draw:

- every notification reaches a final state within NOTIFY_MAX_ROUNDS rounds;
- no part is accepted twice (within a round, and across rounds of the run);
- a notification one channel accepted a part of is never tried on another channel after;
- no SMS is paid for twice: one SMS transport at most takes (or may have taken) it;
- the SMS daily count equals the SMS the providers took (or may have taken);
- a notification is ``sent`` exactly when one transport took every part.

These senders implement the ``Sender`` interface in memory: the pipeline under test is
everything around them. Providers on real sockets are exercised in the other test files.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications import delivery
from notifications.models import Notification, SmsDailyCount, UserContact
from notifications.senders.base import DeliveryError, PartResult, Prepared, Sender
from notifications.senders.sms import SmsSender

Status = Notification.Status
FINAL = {Status.SENT, Status.FAILED, Status.EXPIRED}
MAX_ROUNDS = 3
TRANSPORTS = {"telegram": ("tg",), "email": ("mail",), "sms": ("sms_a", "sms_b")}
BEHAVIOURS = (
    "ok",
    "transient",
    "permanent",
    "refused",  # permanent for this transport only
    "rate_limited",
    "ambiguous",
    "boom",  # an exception no sender should raise
    "slow",
)


@dataclass
class World:
    """What the providers saw: every call, every part taken (for sure or maybe)."""

    scripts: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    parts: dict[tuple[int, str], int] = field(default_factory=dict)
    calls: list[tuple[int, str]] = field(default_factory=list)  # (pk, channel), in order
    # (pk, channel, transport, part, round, call number): the provider took the part
    taken: list[tuple[int, str, str, int, int, int]] = field(default_factory=list)
    maybe: list[tuple[int, str, str, int]] = field(default_factory=list)  # paid, unknown

    def next_behaviour(self, pk: int, transport: str) -> str:
        script = self.scripts.get((pk, transport), [])
        return script.pop(0) if script else "ok"


class Scripted(Sender):
    """A transport whose calls do what the world's script says."""

    world: World

    def __init__(self, channel: str, transport: str) -> None:
        self.channel_name, self.transport_name = channel, transport

    @property
    def channel(self) -> str:  # type: ignore[override]
        return self.channel_name

    @property
    def transport(self) -> str:  # type: ignore[override]
        return self.transport_name

    def is_configured(self) -> bool:
        return True

    def address(self, contact: UserContact) -> str:
        return f"user-{contact.user_id}"

    def prepare(self, notification: Notification, contact: UserContact) -> Prepared:
        count = self.world.parts.get((notification.pk, self.transport), 1)
        return Prepared(
            address=self.address(contact),
            parts=[f"{notification.pk}/{i}" for i in range(count)],
            segments=count,
            extra={"pk": notification.pk},
        )

    def act(self, prepared: Prepared, index: int) -> PartResult:
        pk = prepared.extra["pk"]
        call = len(self.world.calls)
        self.world.calls.append((pk, self.channel))
        behaviour = self.world.next_behaviour(pk, self.transport)
        rounds = Notification.objects.values_list("rounds", flat=True).get(pk=pk)
        if behaviour == "slow":
            time.sleep(0.002)
            behaviour = "ok"
        if behaviour == "ok":
            self.world.taken.append((pk, self.channel, self.transport, index, rounds, call))
            return PartResult(provider_message_id=f"{self.transport}-{pk}-{index}")
        if behaviour in ("ambiguous", "boom") and self.paid:
            # The worst case: the provider took it and the answer was lost.
            self.world.maybe.append((pk, self.channel, self.transport, index))
        if behaviour == "transient":
            raise DeliveryError("try later")
        if behaviour == "permanent":
            raise DeliveryError("no such recipient", permanent=True)
        if behaviour == "refused":
            raise DeliveryError("not through this gateway", permanent=True, transport_only=True)
        if behaviour == "rate_limited":
            raise DeliveryError("slow down", retry_after=0.0)
        if behaviour == "ambiguous":
            raise DeliveryError("no answer in time", ambiguous=True)
        raise RuntimeError("something nobody expected")

    def send_part(self, prepared: Prepared, index: int) -> PartResult:
        return self.act(prepared, index)


class ScriptedSms(SmsSender, Scripted):
    """A paid transport: the real SmsSender template (daily slot) around the script."""

    def __init__(self, channel: str, transport: str) -> None:
        Scripted.__init__(self, channel, transport)

    def address(self, contact: UserContact) -> str:
        return Scripted.address(self, contact)

    def prepare(self, notification: Notification, contact: UserContact) -> Prepared:
        return Scripted.prepare(self, notification, contact)

    def submit(self, prepared: Prepared, index: int) -> PartResult:
        return self.act(prepared, index)


behaviour = st.sampled_from(BEHAVIOURS)
case = st.fixed_dictionaries(
    {
        "parts": st.fixed_dictionaries(
            {t: st.integers(1, 3) for ts in TRANSPORTS.values() for t in ts}
        ),
        "scripts": st.fixed_dictionaries(
            {t: st.lists(behaviour, max_size=6) for ts in TRANSPORTS.values() for t in ts}
        ),
    }
)


@pytest.fixture
def pipeline(settings, monkeypatch):
    settings.NOTIFY_MAX_ROUNDS = MAX_ROUNDS
    settings.NOTIFY_RETRY_BASE_SECONDS = 0
    settings.NOTIFY_RETRY_MAX_SECONDS = 0
    settings.NOTIFY_SMS_DAILY_LIMIT = 1_000_000
    settings.NOTIFY_SMS_LIMIT_POLICY = "wait"
    world = World()
    senders = {
        channel: [
            (ScriptedSms if channel == "sms" else Scripted)(channel, transport)
            for transport in transports
        ]
        for channel, transports in TRANSPORTS.items()
    }
    for channel_senders in senders.values():
        for sender in channel_senders:
            sender.world = world
    monkeypatch.setattr(delivery, "senders_for", lambda channel: senders[channel])
    return world


def drive(ids: list[int], world: World) -> int:
    """Run rounds as consumers would (retry waits skipped) until all are final."""
    for iteration in range(1, 200):
        Notification.objects.filter(pk__in=ids, status=Status.QUEUED).update(
            next_attempt_at=timezone.now()
        )
        waiting = list(
            Notification.objects.filter(pk__in=ids, status=Status.QUEUED).values_list(
                "pk", flat=True
            )
        )
        if not waiting:
            return iteration
        delivery.deliver_now(waiting)
    pytest.fail("notifications never reached a final state")


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cases=st.lists(case, min_size=1, max_size=4))
def test_the_pipeline_keeps_its_promises_whatever_senders_do(pipeline, cases):
    world = pipeline
    world.scripts.clear(), world.parts.clear(), world.calls.clear()
    world.taken.clear(), world.maybe.clear()
    Notification.objects.all().delete()
    SmsDailyCount.objects.all().delete()
    user = get_user_model().objects.get_or_create(username="prop")[0]
    ids = []
    for drawn in cases:
        notification = Notification.objects.create(
            user=user, message="hello", status=Status.QUEUED, next_attempt_at=timezone.now()
        )
        ids.append(notification.pk)
        for transport, script in drawn["scripts"].items():
            world.scripts[(notification.pk, transport)] = list(script)
        for transport, parts in drawn["parts"].items():
            world.parts[(notification.pk, transport)] = parts

    drive(ids, world)

    rows = {n.pk: n for n in Notification.objects.filter(pk__in=ids)}
    for pk, row in rows.items():
        taken = [entry for entry in world.taken if entry[0] == pk]
        # A final state, within the round cap, its lease given up.
        assert row.status in FINAL, (pk, row.status, row.last_error)
        assert row.rounds <= MAX_ROUNDS
        assert row.lease_expires_at is None
        # No part taken twice, in a round or across the run's rounds.
        parts = Counter((channel, transport, part) for _, channel, transport, part, _, _ in taken)
        assert all(count == 1 for count in parts.values()), parts
        # Once a channel took a part, no other channel is tried afterwards.
        if taken:
            first = min(taken, key=lambda entry: entry[5])
            later = {c for n, (p, c) in enumerate(world.calls) if p == pk and n > first[5]}
            assert later <= {first[1]}, (first[1], later)
        # Paid once at most: one SMS transport at most took (or may have taken) the message.
        paid = {e[2] for e in taken if e[1] == "sms"}
        paid |= {t for p, c, t, _ in world.maybe if p == pk and c == "sms"}
        assert len(paid) <= 1, paid
        # Sent exactly when one transport took every part of its message.
        complete = {
            (channel, transport)
            for _, channel, transport, _, _, _ in taken
            if {e[3] for e in taken if e[2] == transport}
            == set(range(world.parts[(pk, transport)]))
        }
        assert (row.status == Status.SENT) == bool(complete), (row.status, complete)
        if complete:
            assert row.channel in {channel for channel, _ in complete}
    # Money: the day's SMS count is what the providers took or may have taken.
    sms_messages = {(e[0], e[2]) for e in world.taken if e[1] == "sms" and e[3] == 0}
    sms_messages |= {(p, t) for p, c, t, i in world.maybe if c == "sms" and i == 0}
    counted = SmsDailyCount.objects.values_list("sent", flat=True).first() or 0
    assert counted == len(sms_messages)
