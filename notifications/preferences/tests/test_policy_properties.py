"""The recipient's-control promises, proven over random worlds (Hypothesis): categories
(required or not, opt-in, default channels, caps that defer or skip, digest windows), users
in random zones with random quiet hours and choices, notifications arriving in bursts over 8 hours,
with or without digest keys, through senders that sometimes fail. On a virtual clock, the
real pipeline (creation, claim, the policy step, digests) runs until every notification is
final, and then:

- a required notification is never suppressed, deferred or capped;
- nothing is dropped by quiet hours (no notification ends expired or suppressed for them);
- every send of a notification that is not required happens outside its recipient's quiet
  hours, in their local time;
- a cap is never exceeded in any window;
- every digest item is delivered exactly once: in one digest message, never on its own.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications import delivery, services
from notifications.models import Notification, UserContact
from notifications.preferences import caps, policy
from notifications.preferences.defaults import forget_default
from notifications.preferences.models import Category, Preference
from notifications.preferences.quiet_hours import Window
from notifications.senders.base import DeliveryError, PartResult, Prepared, Sender

Status = Notification.Status
User = get_user_model()
CHANNELS = ("telegram", "email", "sms")
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC")
START = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)  # Berlin springs forward that night
FINAL = {Status.SENT, Status.FAILED, Status.EXPIRED, Status.SUPPRESSED, Status.CANCELLED}


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Sent:
    pk: int
    channel: str
    at: datetime
    text: str


@dataclass
class Providers:
    """What every channel's provider took, and whether it fails (drawn per call)."""

    clock: Clock
    failures: list[bool] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    owner: dict[str, int] = field(default_factory=dict)

    def fails(self) -> bool:
        return self.failures.pop(0) if self.failures else False


class Fake(Sender):
    """A provider per channel that takes what it is given unless the draw says it fails."""

    providers: Providers

    def __init__(self, channel: str) -> None:
        self.channel_name = channel

    @property
    def channel(self) -> str:  # type: ignore[override]
        return self.channel_name

    @property
    def transport(self) -> str:  # type: ignore[override]
        return self.channel_name

    def is_configured(self) -> bool:
        return True

    def address(self, contact: UserContact) -> str:
        return f"{self.channel}:{contact.user_id}"

    def prepare(self, notification: Notification, contact: UserContact) -> Prepared:
        prepared = Prepared(address=self.address(contact), parts=[notification.message])
        prepared.extra["pk"] = notification.pk
        return prepared

    def send_part(self, prepared: Prepared, index: int) -> PartResult:
        if self.providers.fails():
            raise DeliveryError("try later")
        self.providers.sent.append(
            Sent(prepared.extra["pk"], self.channel, self.providers.clock(), prepared.parts[0])
        )
        return PartResult(provider_message_id=str(len(self.providers.sent)))


category_st = st.fixed_dictionaries(
    {
        "required": st.booleans(),
        "opt_in": st.booleans(),
        "default_channels": st.lists(st.sampled_from(CHANNELS), unique=True, max_size=3),
        "cap": st.one_of(
            st.none(),
            st.tuples(
                st.integers(1, 2),
                st.sampled_from([timedelta(hours=1), timedelta(days=1)]),
                st.sampled_from(list(Category.OverCap)),
            ),
        ),
        "digest": st.sampled_from([None, timedelta(minutes=15), timedelta(hours=2)]),
    }
)
user_st = st.fixed_dictionaries(
    {
        "zone": st.sampled_from(ZONES),
        "quiet": st.one_of(
            st.just("off"),
            st.tuples(st.integers(0, 23), st.integers(0, 23))
            .filter(lambda w: w[0] != w[1])
            .map(lambda w: f"{w[0]:02d}:00-{w[1]:02d}:30"),
        ),
        "off": st.sets(st.tuples(st.integers(0, 1), st.sampled_from(CHANNELS)), max_size=3),
        "on": st.sets(st.tuples(st.integers(0, 1), st.sampled_from(CHANNELS)), max_size=4),
    }
)
arrival_st = st.tuples(
    st.integers(0, 1),  # user
    st.integers(0, 1),  # category
    st.integers(0, 8 * 60),  # minute of arrival: bursts, for caps and digests
    st.sampled_from([None, "a", "b"]),  # digest key
)
world_st = st.fixed_dictionaries(
    {
        "categories": st.lists(category_st, min_size=2, max_size=2),
        "users": st.lists(user_st, min_size=2, max_size=2),
        "arrivals": st.lists(arrival_st, min_size=1, max_size=20),
        "failures": st.lists(st.booleans(), max_size=20),
    }
)


@pytest.fixture
def pipeline(settings, monkeypatch):
    settings.NOTIFY_MAX_ROUNDS = 20
    settings.NOTIFY_RETRY_BASE_SECONDS = 60
    settings.NOTIFY_RETRY_MAX_SECONDS = 600
    settings.NOTIFY_MESSAGE_TTL = 0  # nothing expires: what quiet hours do is all there is
    settings.NOTIFY_QUIET_WINDOW = None
    settings.TIME_ZONE = "UTC"
    clock = Clock()
    providers = Providers(clock)
    Fake.providers = providers
    senders = {channel: [Fake(channel)] for channel in CHANNELS}
    monkeypatch.setattr(delivery, "senders_for", lambda channel: senders[channel])
    monkeypatch.setattr(timezone, "now", clock)
    return clock, providers


def build(world: dict) -> tuple[list[Category], list, list[tuple[int, datetime, Category, str]]]:
    categories = []
    for n, spec in enumerate(world["categories"]):
        cap = spec["cap"]
        categories.append(
            Category.objects.create(
                key=f"c{n}",
                name_en=f"C{n}",
                required=spec["required"],
                opt_in=spec["opt_in"] and not spec["required"],
                default_channels=spec["default_channels"],
                cap_count=cap[0] if cap else None,
                cap_window=cap[1] if cap else None,
                over_cap=cap[2] if cap else Category.OverCap.DEFER,
                digest_window=spec["digest"],
            )
        )
    users = []
    for n, spec in enumerate(world["users"]):
        user = User.objects.create_user(f"u{n}")
        UserContact.objects.filter(user=user).update(
            timezone=spec["zone"], quiet_hours=spec["quiet"]
        )
        for index, channel in spec["on"]:
            Preference.objects.update_or_create(
                user=user, category=categories[index], channel=channel, defaults={"enabled": True}
            )
        for index, channel in spec["off"]:
            Preference.objects.update_or_create(
                user=user, category=categories[index], channel=channel, defaults={"enabled": False}
            )
        users.append(user)
    arrivals = sorted(
        (
            (START + timedelta(minutes=minute), user, categories[category], key)
            for user, category, minute, key in world["arrivals"]
        ),
        key=lambda arrival: arrival[0],
    )
    return categories, users, arrivals


def run(clock: Clock, users: list, arrivals: list) -> dict[int, tuple]:
    """Create each notification at its time and deliver whatever is due, until every one is
    final. Returns pk → (user, category, digest key, created at)."""
    made: dict[int, tuple] = {}
    pending = list(arrivals)
    for _ in range(2000):
        while pending and pending[0][0] <= clock.now:
            at, user_index, category, key = pending.pop(0)
            key = key if key and category.digest_window else ""
            notification = services.notification_create(
                user=users[user_index], message=f"m{len(made)}", category=category, digest_key=key
            )
            made[notification.pk] = (user_index, category, key, at)
        waiting = dict(
            Notification.objects.filter(status__in=(Status.QUEUED, Status.SCHEDULED)).values_list(
                "pk", "next_attempt_at"
            )
        )
        due = sorted(pk for pk, at in waiting.items() if at is None or at <= clock.now)
        if due:
            delivery.deliver_now(due)
            continue
        times = [at for at in waiting.values() if at is not None]
        if pending:
            times.append(pending[0][0])
        if not times:
            return made
        clock.now = max(min(times), clock.now + timedelta(seconds=1))
    pytest.fail("the notifications never all ended")


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=world_st)
def test_the_recipients_control_keeps_its_promises(pipeline, world):
    clock, providers = pipeline
    clock.now = START
    providers.failures = list(world["failures"])
    providers.sent = []
    forget_default()
    Notification.objects.all().delete()
    Category.objects.all().delete()
    User.objects.all().delete()
    categories, users, arrivals = build(world)
    made = run(clock, users, arrivals)

    rows = {n.pk: n for n in Notification.objects.all()}
    assert all(row.status in FINAL for row in rows.values()), {
        pk: row.status for pk, row in rows.items()
    }
    sends_of: dict[int, list[Sent]] = defaultdict(list)
    for sent in providers.sent:
        sends_of[sent.pk].append(sent)

    for pk, (_user_index, category, key, _at) in made.items():
        row = rows[pk]
        if category.required:
            # Never suppressed, deferred or capped.
            assert row.status != Status.SUPPRESSED, row.last_error
            assert "quiet hours" not in row.last_error and "over the cap" not in row.last_error
        # Nothing dropped by quiet hours.
        assert not (row.status == Status.EXPIRED and "quiet hours" in row.last_error)
        assert not (row.status == Status.SUPPRESSED and "quiet hours" in row.last_error)
        if key:
            # A digest item: sent only inside its one digest, once.
            assert pk not in sends_of, "an item went out on its own"
            assert row.digest_id is not None
            digest_sends = sends_of.get(row.digest_id, [])
            if row.status == Status.SENT:
                assert len(digest_sends) == 1
                assert rows[row.digest_id].status == Status.SENT
                size = rows[row.digest_id].digest_size
                text = digest_sends[0].text
                assert text == row.message or row.message in text or size > 1

    # Every send outside the recipient's quiet hours, in their local time.
    for sent in providers.sent:
        row = rows[sent.pk]
        category = next(c for c in categories if c.pk == row.category_id)
        if category.required:
            continue
        contact = UserContact.objects.get(user_id=row.user_id)
        window = policy.quiet_window(contact)
        if window is not None:
            local = sent.at.astimezone(ZoneInfo(contact.timezone))
            assert not window.contains(local.timetz()), (sent, str(window), local)

    # A cap is never exceeded in any window.
    for category in categories:
        if category.required or not category.cap_count:
            continue
        per_window: Counter = Counter()
        for sent in providers.sent:
            row = rows[sent.pk]
            if row.category_id != category.pk:
                continue
            zone = ZoneInfo(UserContact.objects.get(user_id=row.user_id).timezone)
            per_window[(row.user_id, caps.window_start(category, sent.at, zone))] += 1
        assert all(count <= category.cap_count for count in per_window.values()), per_window

    # Each digest was sent at most once, as one message.
    for pk, row in rows.items():
        if row.digest_size:
            assert len(sends_of.get(pk, [])) <= 1


def test_a_window_reads_as_its_text():  # keeps the import of Window honest for readers
    assert str(Window(time(22), time(8, 30))) == "22:00-08:30"
