"""Property-based test of the delivery pipeline (Hypothesis): the promises of
docs/reliability.md, carried by one test.

Hypothesis draws everything before the first call:

- the settings: the SMS daily limit (none, or 0–3) and its policy (wait or fail), and the
  ``retry_after`` a rate limit asks for (never zero);
- for each notification: which channels, in what order; the channels its user has no
  address on; its ``expires_at`` (often passing mid-run); and for each transport the parts
  of its message and a script of what ``prepare`` and each provider call do. A script ends
  in a behaviour repeated forever: a transport may fail for good.
- A provider call may "crash": the provider takes the part and the worker dies (a
  ``BaseException``) before recording it. Its rows wait out their lease, then the sweeper
  runs: the one window for a duplicate.

Time is a virtual clock: a provider call takes a second (a slow one 30), and when no row is
due the clock jumps to the next one (backoff, ``retry_after``, tomorrow's SMS count), so
expiry and the daily count are exercised without sleeping. Every sender event (address,
prepare, call) is logged with its outcome and the claim (round) it belongs to. For every
draw, the real pipeline (claim → chain → record, rounds driven as consumers would) keeps:

1. every notification ends final within NOTIFY_MAX_ROUNDS, its lease given up, and
   ``rounds`` equals its claims less the rate-limited ones (given back unless it expired);
2. no provider call at or after ``expires_at``;
3. no part taken twice, except that each crash may be followed by one resend of its part;
4. once a channel took a part, no other channel is called; a split message stuck halfway
   (the rest refused, or a paid part that may have gone) ends failed with that round;
   ``sent`` exactly when one transport took every part;
5. paid once: one SMS transport at most took or may have taken the message, and no SMS call
   follows a paid ambiguous outcome or an unexpected error in the same run;
6. each day's SMS count equals the SMS the providers took or may have taken;
7. no call on a channel after a permanent refusal on it;
8. the sender event after a rate limit is on the same channel;
9. a notification fails before the cap only when every channel is blocked or it is stuck;
10. each time a worker died holding a notification shows as one ``lease`` attempt.

What a crashed round knew only in memory (a refusal, an ambiguous SMS) died with its
worker: across rounds, 5 and 7 count only what rounds that ended recorded learned.

These senders implement the ``Sender`` interface in memory (the SMS ones inside the real
``SmsSender`` template, daily slot included): the pipeline under test is everything around
them. Providers on real sockets are exercised in the other test files.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from notifications import delivery, recovery
from notifications.models import DeliveryAttempt, Notification, SmsDailyCount, UserContact
from notifications.senders.base import DeliveryError, PartResult, Prepared, Sender, SkipChannel
from notifications.senders.sms import SmsSender

Status = Notification.Status
FINAL = {Status.SENT, Status.FAILED, Status.EXPIRED}
MAX_ROUNDS = 4
MAX_NOTIFICATIONS = 4
CHANNELS = ("telegram", "email", "sms")
PAID = "sms"
TRANSPORTS = {"telegram": ("tg",), "email": ("mail",), "sms": ("sms_a", "sms_b")}
ALL_TRANSPORTS = tuple(t for transports in TRANSPORTS.values() for t in transports)

TICK = timedelta(seconds=1)  # one provider call
SLOW = timedelta(seconds=30)  # a slow one
FAR = timedelta(days=3)  # an expiry only waiting for tomorrow's SMS count reaches
RETRY_AFTER = (1.0, 20.0, 600.0)

SEND_FAILURES = (
    "transient",
    "permanent",
    "refused",  # permanent for this transport only
    "rate_limited",
    "ambiguous",
    "boom",  # an exception no sender should raise
    "crash",  # the provider took the part, then the worker died
)
PREPARE_FAILURES = ("skip", "transient", "permanent", "refused", "boom")
# What a call or a prepare does, weighted by repeats: mostly what brings more rounds.
SENDS = ("ok",) * 3 + ("slow",) + ("transient", "rate_limited", "ambiguous") * 2 + SEND_FAILURES
SENDS_FOR_EVER = ("ok",) * 6 + ("transient", *SEND_FAILURES)
PREPARES = ("ok", "ok", "ok", "transient", *PREPARE_FAILURES)
PREPARES_FOR_EVER = ("ok",) * 10 + PREPARE_FAILURES
ACCEPTED = {"ok", "slow"}  # the provider took the part, and the pipeline heard so
TOOK = ACCEPTED | {"crash"}  # the provider took the part
MAYBE = {"ambiguous", "boom"}  # on a paid transport: the provider may have taken it
NEUTRAL = ACCEPTED  # address found, prepared, part taken: nothing that blocks or fails


class WorkerDied(BaseException):
    """The worker was killed (SIGKILL, out of memory) right after a provider took a part."""


@dataclass
class Script:
    """What one transport does for one notification: ``prefix`` in order, then ``tail``
    for ever after."""

    prefix: list[str]
    tail: str

    def next(self) -> str:
        return self.prefix.pop(0) if self.prefix else self.tail


@dataclass(frozen=True)
class Event:
    """One thing a sender was asked for one notification, in one claim (round) of it."""

    seq: int
    pk: int
    claim: int
    kind: str  # "address", "prepare" or "send"
    channel: str
    transport: str
    outcome: str  # address: "ok", "no_address" or "closed" (the day's SMS limit reached)
    part: int = 0
    at: datetime | None = None  # a send: when the call started
    end: datetime | None = None  # ... and when it ended


@dataclass
class World:
    """The drawn run, the virtual clock, and what the providers saw."""

    start: datetime
    clock: datetime
    daily_limit: int | None
    retry_after: float
    owner: dict[int, int] = field(default_factory=dict)  # user id → notification id
    no_address: set[tuple[int, str]] = field(default_factory=set)
    parts: dict[tuple[int, str], int] = field(default_factory=dict)
    prepares: dict[tuple[int, str], Script] = field(default_factory=dict)
    sends: dict[tuple[int, str], Script] = field(default_factory=dict)
    claims: Counter[int] = field(default_factory=Counter)  # claims of each notification
    crashed: set[tuple[int, int]] = field(default_factory=set)  # (pk, claim) whose worker died
    lost: Counter[int] = field(default_factory=Counter)  # rows a dying worker held
    events: list[Event] = field(default_factory=list)

    def log(self, pk: int, kind: str, channel: str, transport: str, outcome: str, **more) -> None:
        self.events.append(
            Event(len(self.events), pk, self.claims[pk], kind, channel, transport, outcome, **more)
        )


def failure(behaviour: str, retry_after: float) -> Exception:
    """What a provider (or ``prepare``) raises for a failing ``behaviour``."""
    if behaviour == "transient":
        return DeliveryError("try later")
    if behaviour == "permanent":
        return DeliveryError("no such recipient", permanent=True)
    if behaviour == "refused":
        return DeliveryError("not through this gateway", permanent=True, transport_only=True)
    if behaviour == "rate_limited":
        return DeliveryError("slow down", retry_after=retry_after)
    if behaviour == "ambiguous":
        return DeliveryError("no answer in time", ambiguous=True)
    assert behaviour == "boom", behaviour
    return RuntimeError("something nobody expected")


class Scripted(Sender):
    """A transport whose every answer is the world's script."""

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
        pk = self.world.owner[contact.user_id]
        if (pk, self.channel) in self.world.no_address:
            self.world.log(pk, "address", self.channel, self.transport, "no_address")
            raise SkipChannel("no address")
        self.world.log(pk, "address", self.channel, self.transport, self.closed())
        return f"user-{contact.user_id}"

    def closed(self) -> str:
        """Whether the channel is closed to everyone now (a daily limit): "closed" or "ok"."""
        return "ok"

    def prepare(self, notification: Notification, contact: UserContact) -> Prepared:
        pk = notification.pk
        behaviour = self.world.prepares[(pk, self.transport)].next()
        self.world.log(pk, "prepare", self.channel, self.transport, behaviour)
        if behaviour == "skip":
            raise SkipChannel("nothing to send through this transport")
        if behaviour != "ok":
            raise failure(behaviour, self.world.retry_after)
        count = self.world.parts[(pk, self.transport)]
        return Prepared(
            address=f"user-{contact.user_id}",
            parts=[f"{pk}/{i}" for i in range(count)],
            segments=count,
            extra={"pk": pk},
        )

    def act(self, prepared: Prepared, index: int) -> PartResult:
        world = self.world
        pk = prepared.extra["pk"]
        behaviour = world.sends[(pk, self.transport)].next()
        at = world.clock
        world.clock += SLOW if behaviour == "slow" else TICK
        world.log(
            pk, "send", self.channel, self.transport, behaviour, part=index, at=at, end=world.clock
        )
        if behaviour in ACCEPTED:
            return PartResult(provider_message_id=f"{self.transport}-{pk}-{index}")
        if behaviour == "crash":
            world.crashed.add((pk, world.claims[pk]))
            raise WorkerDied
        raise failure(behaviour, world.retry_after)

    def send_part(self, prepared: Prepared, index: int) -> PartResult:
        return self.act(prepared, index)


class ScriptedSms(SmsSender, Scripted):
    """A paid transport: the real SmsSender template (the daily slot) around the script."""

    def __init__(self, channel: str, transport: str) -> None:
        Scripted.__init__(self, channel, transport)

    def address(self, contact: UserContact) -> str:
        return Scripted.address(self, contact)

    def closed(self) -> str:
        limit = self.world.daily_limit
        sent = SmsDailyCount.objects.filter(day=timezone.localdate()).values_list("sent", flat=True)
        return "closed" if limit is not None and (sent.first() or 0) >= limit else "ok"

    def prepare(self, notification: Notification, contact: UserContact) -> Prepared:
        return Scripted.prepare(self, notification, contact)

    def submit(self, prepared: Prepared, index: int) -> PartResult:
        return self.act(prepared, index)


# --- what Hypothesis draws --------------------------------------------------------------------


def script(
    behaviours: tuple[str, ...], tails: tuple[str, ...], shortest: int, longest: int
) -> st.SearchStrategy[Script]:
    return st.builds(
        Script,
        prefix=st.lists(st.sampled_from(behaviours), min_size=shortest, max_size=longest),
        tail=st.sampled_from(tails),
    )


# A notification: which channels in what order, the channels its user has no address on,
# and per transport the parts of its message and what prepare and each call do.
notification_case = st.fixed_dictionaries(
    {
        # Seconds after the start (x.5: never when a call starts), or None: FAR.
        "expires_in": st.one_of(st.integers(-1, 40).map(lambda seconds: seconds + 0.5), st.none()),
        "channels": st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True),
        "no_address": st.frozensets(st.sampled_from(CHANNELS), max_size=1),
        "parts": st.fixed_dictionaries({t: st.integers(1, 3) for t in ALL_TRANSPORTS}),
        "prepares": st.fixed_dictionaries(
            {t: script(PREPARES, PREPARES_FOR_EVER, 0, 2) for t in ALL_TRANSPORTS}
        ),
        "sends": st.fixed_dictionaries(
            {t: script(SENDS, SENDS_FOR_EVER, 1, 5) for t in ALL_TRANSPORTS}
        ),
    }
)
run_case = st.fixed_dictionaries(
    {
        "daily_limit": st.sampled_from((None, 0, 1, 2, 3)),
        "policy": st.sampled_from(("wait", "fail")),
        "retry_after": st.sampled_from(RETRY_AFTER),
        "notifications": st.lists(notification_case, min_size=1, max_size=MAX_NOTIFICATIONS),
    }
)


# --- the pipeline around the scripted senders ---------------------------------------------------


class Harness:
    """The senders, the claim and the clock the pipeline sees, pointed at one world per
    example."""

    def __init__(self) -> None:
        self.world: World | None = None
        self.real_claim = delivery.claim
        self.senders = {
            channel: [
                (ScriptedSms if channel == PAID else Scripted)(channel, transport)
                for transport in transports
            ]
            for channel, transports in TRANSPORTS.items()
        }
        self.users = [
            get_user_model().objects.get_or_create(username=f"prop{n}")[0]
            for n in range(MAX_NOTIFICATIONS)
        ]
        self.start = timezone.make_aware(datetime(2030, 6, 5, 10, 0))

    def now(self) -> datetime:
        return self.world.clock if self.world is not None else self.start

    def claim(self, ids: list[int]) -> list[delivery.Job]:
        jobs = self.real_claim(ids)
        for job in jobs:
            self.world.claims[job.notification.pk] += 1
        return jobs

    def begin(self, case: dict[str, Any]) -> tuple[World, list[int]]:
        """A fresh world and database for one drawn run; the notifications' ids."""
        Notification.objects.all().delete()
        SmsDailyCount.objects.all().delete()
        world = World(self.start, self.start, case["daily_limit"], case["retry_after"])
        self.world = world
        for sender in (s for senders in self.senders.values() for s in senders):
            sender.world = world
        ids = []
        for user, drawn in zip(self.users, case["notifications"], strict=False):
            expires_in = drawn["expires_in"]
            notification = Notification.objects.create(
                user=user,
                message="hello",
                channels=drawn["channels"],
                status=Status.QUEUED,
                next_attempt_at=self.start,
                expires_at=self.start
                + (FAR if expires_in is None else timedelta(seconds=expires_in)),
            )
            pk = notification.pk
            ids.append(pk)
            world.owner[user.pk] = pk
            world.no_address |= {(pk, channel) for channel in drawn["no_address"]}
            for transport in ALL_TRANSPORTS:
                world.parts[(pk, transport)] = drawn["parts"][transport]
                prepare, send = drawn["prepares"][transport], drawn["sends"][transport]
                world.prepares[(pk, transport)] = Script(list(prepare.prefix), prepare.tail)
                # Waiting for a rate limit is not a round: only expires_at bounds it, so a
                # transport rate-limits for ever only when that comes soon.
                tail = send.tail
                if tail == "rate_limited" and expires_in is None:
                    tail = "transient"
                world.sends[(pk, transport)] = Script(list(send.prefix), tail)
        return world, ids


@pytest.fixture
def harness(settings, monkeypatch) -> Harness:
    settings.NOTIFY_MAX_ROUNDS = MAX_ROUNDS
    settings.NOTIFY_RETRY_BASE_SECONDS = 1
    settings.NOTIFY_RETRY_MAX_SECONDS = 4
    harness = Harness()
    monkeypatch.setattr(delivery, "senders_for", lambda channel: harness.senders[channel])
    monkeypatch.setattr(delivery, "claim", harness.claim)
    monkeypatch.setattr(timezone, "now", harness.now)
    return harness


def drive(world: World, ids: list[int]) -> None:
    """Run rounds as consumers would until every notification is final: the due rows in one
    batch; when none is due, the clock moves to the next. A worker that dies leaves its rows
    to the sweeper, which runs once their leases have expired."""
    for _ in range(500):
        waiting = dict(
            Notification.objects.filter(pk__in=ids, status=Status.QUEUED).values_list(
                "pk", "next_attempt_at"
            )
        )
        if not waiting:
            return
        due = [pk for pk, at in waiting.items() if at is None or at <= world.clock]
        if not due:
            world.clock = min(at for at in waiting.values() if at is not None)
            continue
        try:
            delivery.deliver_now(sorted(due))
        except WorkerDied:
            held = Notification.objects.filter(pk__in=ids, status=Status.SENDING)
            world.lost.update(held.values_list("pk", flat=True))
            held.update(lease_expires_at=world.clock - TICK)
            recovery.sweep()
    pytest.fail("notifications never reached a final state")


# --- the promises -----------------------------------------------------------------------------


def given_back(sends: list[Event], claim: int, expires_at: datetime) -> bool:
    """Whether a claim's round was not counted: it ended on a rate limit before it expired."""
    last = [e for e in sends if e.claim == claim][-1:]
    return bool(last) and last[0].outcome == "rate_limited" and last[0].end < expires_at


def remembered(events: list[Event], world: World, now: Event) -> list[Event]:
    """What the pipeline can still know when ``now`` happens: the earlier events of its own
    claim, and those of claims that ended recorded (a dead worker's memory died with it)."""
    return [
        e
        for e in events
        if e.seq < now.seq and (e.claim == now.claim or (e.pk, e.claim) not in world.crashed)
    ]


def stuck(call: Event) -> bool:
    """Whether a call leaves a split message stuck: a part went out before it, and this one
    was refused, or (paid) may have gone: it can't be completed without sending a part again."""
    return call.part > 0 and (
        call.outcome in {"permanent", "refused"} or (call.channel == PAID and call.outcome in MAYBE)
    )


def check_parts(world: World, row: Notification, sends: list[Event]) -> None:
    """3 and 4: parts taken once (a crash allows one resend), one channel, a stuck message
    ends with its round, sent ⇔ complete."""
    takes: dict[tuple[str, str, int], list[str]] = defaultdict(list)
    for e in sends:
        if e.outcome in TOOK:
            takes[(e.channel, e.transport, e.part)].append(e.outcome)
    for part, outcomes in takes.items():
        assert all(outcome == "crash" for outcome in outcomes[:-1]), (part, outcomes)
    for call in (e for e in sends if stuck(e)):
        assert call.claim == world.claims[row.pk], ("a stuck message went on", call)
        assert row.status in {Status.FAILED, Status.EXPIRED}, (row.status, call)
    accepted = [e for e in sends if e.outcome in ACCEPTED]
    if accepted:
        strays = {e.channel for e in sends if e.seq > accepted[0].seq} - {accepted[0].channel}
        assert not strays, (accepted[0].channel, strays)
    complete = {
        (e.channel, e.transport)
        for e in accepted
        if {x.part for x in accepted if x.transport == e.transport}
        == set(range(world.parts[(row.pk, e.transport)]))
    }
    assert len(complete) <= 1, complete
    assert (row.status == Status.SENT) == bool(complete), (row.status, complete, row.last_error)
    if complete:
        assert row.channel == next(iter(complete))[0]


def check_paid_once(world: World, events: list[Event], sends: list[Event]) -> None:
    """5: one SMS transport at most took or may have taken it; nothing after a maybe."""
    sms = [e for e in sends if e.channel == PAID]
    paid = {e.transport for e in sms if e.outcome in ACCEPTED}
    paid |= {
        e.transport for e in sms if e.outcome in MAYBE and (e.pk, e.claim) not in world.crashed
    }
    assert len(paid) <= 1, paid
    for call in sms:
        maybe = [
            e
            for e in remembered(events, world, call)
            if e.kind == "send" and e.channel == PAID and e.outcome in MAYBE
        ]
        assert not maybe, ("an SMS call after a paid ambiguous outcome", maybe[0], call)


def check_refusals_and_rate_limits(world: World, events: list[Event]) -> None:
    """7: no call on a channel after a permanent refusal on it; 8: the event after a rate
    limit is on the same channel."""
    for call in (e for e in events if e.kind == "send"):
        refused = [
            e
            for e in remembered(events, world, call)
            if e.channel == call.channel and e.outcome == "permanent"
        ]
        assert not refused, ("a call after a permanent refusal", refused[0], call)
    for limited, after in pairwise(events):
        if limited.kind == "send" and limited.outcome == "rate_limited":
            assert after.channel == limited.channel, ("left the channel", limited, after)


def check_failed_early(
    world: World, row: Notification, events: list[Event], sends: list[Event], policy: str
) -> None:
    """9: failed before the cap only when stuck, or every channel blocked: refused for good,
    ambiguous (SMS), partly delivered elsewhere, or in its last round each transport skipped,
    refused it or had no address (or, under the "fail" policy, the day's SMS were used up)."""
    last = world.claims[row.pk]
    # The last round, with the claims it went on from: rate-limited ones (given back), and
    # crashed ones (the row kept where the round stood before them).
    first = last
    while first > 1 and (
        given_back(sends, first - 1, row.expires_at) or (row.pk, first - 1) in world.crashed
    ):
        first -= 1
    if any(stuck(e) for e in sends if e.claim == last):
        return
    recorded = [e for e in events if (e.pk, e.claim) not in world.crashed]
    blocking = {"no_address", "skip", "refused"} | ({"closed"} if policy == "fail" else set())
    for channel in row.channels:
        if any(e.channel == channel and e.outcome == "permanent" for e in recorded):
            continue
        if channel == PAID and any(
            e.kind == "send" and e.channel == PAID and e.outcome in MAYBE for e in recorded
        ):
            continue
        if any(e.outcome in ACCEPTED and e.channel != channel for e in sends):
            continue
        # Its latest pass: a claim that goes on from a rate limit or a crash on this channel
        # starts it again from its first transport.
        mine = [e for e in events if e.claim >= first and e.channel == channel]
        verdicts = [e.outcome for e in mine if e.claim == mine[-1].claim] if mine else []
        # The rest of a message partly sent here takes no new SMS slot: no limit applies.
        partly_here = any(e.outcome in ACCEPTED and e.channel == channel for e in sends)
        neutral = NEUTRAL | ({"closed"} if partly_here else set())
        verdicts = [v for v in verdicts if v not in neutral]
        assert verdicts and set(verdicts) <= blocking, (
            f"failed in round {row.rounds} of {MAX_ROUNDS} though {channel} may still work",
            verdicts,
            row.last_error,
        )


def check_notification(world: World, row: Notification, policy: str) -> None:
    events = [e for e in world.events if e.pk == row.pk]
    sends = [e for e in events if e.kind == "send"]
    claims = world.claims[row.pk]
    # 1. Final within the cap, its lease given up; rounds = claims less those given back.
    assert row.status in FINAL, (row.status, row.last_error)
    assert row.rounds <= MAX_ROUNDS
    assert row.lease_expires_at is None
    rate_limited = sum(given_back(sends, claim, row.expires_at) for claim in range(1, claims + 1))
    assert row.rounds == claims - rate_limited, (row.rounds, claims, rate_limited)
    # 2. Never a call once it expired.
    late = [e for e in sends if e.at >= row.expires_at]
    assert not late, ("called after expires_at", row.expires_at, late[0])
    check_parts(world, row, sends)
    check_paid_once(world, events, sends)
    check_refusals_and_rate_limits(world, events)
    if row.status == Status.FAILED and row.rounds < MAX_ROUNDS:
        check_failed_early(world, row, events, sends, policy)
    # 10. Each time a dying worker held it shows, to the operator, as a lease attempt.
    leases = DeliveryAttempt.objects.filter(notification_id=row.pk, transport="lease").count()
    assert leases == world.lost[row.pk], (leases, world.lost[row.pk])


def check_money(world: World) -> None:
    """6: each day's SMS count is what the providers took or may have taken that day (a
    crash resent pays again: that is the window); nothing is counted with no limit."""
    counted = {day: sent for day, sent in SmsDailyCount.objects.values_list("day", "sent") if sent}
    if world.daily_limit is None:
        assert counted == {}
        return
    paid = Counter(
        timezone.localtime(e.at).date()
        for e in world.events
        if e.kind == "send" and e.channel == PAID and e.part == 0 and e.outcome in TOOK | MAYBE
    )
    assert counted == dict(paid), (counted, paid)
    assert all(sent <= world.daily_limit for sent in counted.values()), counted


def story(world: World, row: Notification) -> str:
    """What happened to one notification, for the report of a failing example."""

    def after_start(moment: datetime) -> str:
        return f"+{(moment - world.start).total_seconds():g}s"

    lines = [
        f"#{row.pk} via {row.channels}, expires at {after_start(row.expires_at)}: "
        f"{row.status} after {row.rounds} rounds ({row.last_error})"
    ]
    for e in (e for e in world.events if e.pk == row.pk):
        part = f" part {e.part} at {after_start(e.at)}" if e.at else ""
        lines.append(f"  claim {e.claim}: {e.kind} {e.transport}{part}: {e.outcome}")
    return "\n".join(lines)


@pytest.mark.django_db
# The long profile's 1,000 examples, and a shrink, outlast the suite's 120 s a test.
@pytest.mark.timeout(max(120, 2 * settings().max_examples))
@settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(case=run_case)
def test_the_pipeline_keeps_its_promises_whatever_senders_do(harness, case):
    world, ids = harness.begin(case)
    # Per example, not through the ``settings`` fixture: its overrides nest, one per change.
    with override_settings(
        NOTIFY_SMS_DAILY_LIMIT=case["daily_limit"], NOTIFY_SMS_LIMIT_POLICY=case["policy"]
    ):
        drive(world, ids)
    rows = list(Notification.objects.filter(pk__in=ids))
    note(
        f"SMS daily limit {case['daily_limit']} ({case['policy']}); retry_after {world.retry_after}"
    )
    for row in rows:
        note(story(world, row))
    for row in rows:
        check_notification(world, row, case["policy"])
        early = row.status == Status.FAILED and row.rounds < MAX_ROUNDS
        event(f"a notification ends {row.status}{' before the cap' if early else ''}")
    if world.crashed:
        event("a worker died after a provider took a part")
    if any(
        e.kind == "send" and e.end >= row.expires_at
        for row in rows
        for e in world.events
        if e.pk == row.pk
    ):
        event("a notification expired during a call")
    check_money(world)
