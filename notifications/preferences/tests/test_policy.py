"""The policy step in delivery, in process against the fakes: a channel turned off for a
category is skipped with the reason, every channel off ends suppressed, a required category
bypasses everything, quiet hours defer to their end in the recipient's zone (or expire), and
frequency caps hold, deferring or skipping over the cap."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from notifications import delivery, services
from notifications.models import DeliveryAttempt, Notification, UserContact
from notifications.preferences import policy
from notifications.preferences.models import CapCount, Category, Preference

pytestmark = pytest.mark.django_db(transaction=True)

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome


@pytest.fixture
def chain(chain):
    """The package's chain (conftest.py), giving up after three rounds."""
    chain.NOTIFY_MAX_ROUNDS = 3
    return chain


@pytest.fixture
def promotions() -> Category:
    return Category.objects.create(key="promotions", name_en="Promotions", name_ru="Акции")


def send(user, category=None, **kwargs) -> Notification:
    notification = services.notification_create(
        user=user, message=kwargs.pop("message", "Sale!"), category=category, **kwargs
    )
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())
    delivery.deliver_now([notification.pk])
    notification.refresh_from_db()
    return notification


def attempts(notification: Notification) -> list[tuple[str, str, str]]:
    return list(notification.attempts.values_list("channel", "outcome", "error"))


def test_a_channel_turned_off_for_the_category_is_skipped_with_the_reason(
    chain, telegram, smtp, make_user, promotions
):
    user = make_user(email="ann@example.com", telegram_chat_id="71")
    Preference.objects.create(user=user, category=promotions, channel="telegram", enabled=False)
    notification = send(user, promotions)
    assert (notification.status, notification.channel) == (Status.SENT, "email")
    assert telegram.messages == []
    assert attempts(notification)[0] == (
        "telegram",
        Outcome.SKIPPED,
        "turned off Telegram for Promotions",
    )
    # Another category still reaches Telegram.
    other = send(user, message="Your order shipped")
    assert (other.status, other.channel) == (Status.SENT, "telegram")


def test_every_channel_off_ends_suppressed_and_says_why(
    chain, telegram, smtp, make_user, promotions
):
    user = make_user(email="ann@example.com", telegram_chat_id="72")
    for channel in ("telegram", "email", "sms"):
        Preference.objects.create(user=user, category=promotions, channel=channel, enabled=False)
    notification = send(user, promotions)
    assert notification.status == Status.SUPPRESSED
    assert notification.last_error.startswith("suppressed by the recipient's choices: ")
    assert "turned off Email for Promotions" in notification.last_error
    assert telegram.messages == [] and smtp.received == []


def test_an_opt_in_category_reaches_only_those_who_turned_it_on(chain, telegram, smtp, make_user):
    news = Category.objects.create(key="news", name_en="News", opt_in=True)
    silent = make_user(email="s@example.com")
    consenting = make_user(email="c@example.com")
    Preference.objects.create(user=consenting, category=news, channel="email", enabled=True)
    assert send(silent, news).status == Status.SUPPRESSED
    assert send(consenting, news).channel == "email"
    assert [m.rcpt_tos for m in smtp.received] == [["c@example.com"]]


def test_a_categorys_default_channels_apply_until_the_user_chooses(
    chain, telegram, smtp, make_user
):
    digest_only = Category.objects.create(
        key="weekly", name_en="Weekly", default_channels=["email"]
    )
    user = make_user(email="d@example.com", telegram_chat_id="73")
    notification = send(user, digest_only)
    assert notification.channel == "email"
    assert attempts(notification)[0][2] == "turned off Telegram for Weekly"
    Preference.objects.create(user=user, category=digest_only, channel="telegram", enabled=True)
    assert send(user, digest_only).channel == "telegram"


def test_a_required_category_bypasses_preferences_quiet_hours_and_caps(
    chain, telegram, smtp, make_user
):
    security = Category.objects.create(
        key="security",
        name_en="Security",
        required=True,
        cap_count=1,
        cap_window=timedelta(days=1),
    )
    user = make_user(email="r@example.com", telegram_chat_id="74")
    Preference.objects.create(user=user, category=security, channel="telegram", enabled=False)
    always_quiet(user)
    first, second = send(user, security), send(user, security)
    assert [first.status, second.status] == [Status.SENT, Status.SENT]
    assert [first.channel, second.channel] == ["telegram", "telegram"]
    assert not CapCount.objects.exists()


def always_quiet(user, zone="Europe/Berlin") -> datetime:
    """Quiet hours around now in ``zone`` (an hour before to an hour after): their end."""
    now = timezone.now().astimezone(ZoneInfo(zone))
    start = (now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    UserContact.objects.filter(user=user).update(
        timezone=zone, quiet_hours=f"{start:%H:%M}-{end:%H:%M}"
    )
    return (now + timedelta(hours=1)).replace(second=0, microsecond=0)


def test_quiet_hours_defer_to_their_end_in_the_users_zone_and_drop_nothing(
    chain, telegram, smtp, make_user, promotions
):
    user = make_user(email="q@example.com", telegram_chat_id="75")
    end = always_quiet(user, "America/New_York")
    notification = send(user, promotions)
    assert notification.status == Status.SCHEDULED
    assert notification.next_attempt_at == end
    assert notification.rounds == 0  # waiting is not a failed round
    assert notification.last_error.startswith("quiet hours ")
    assert "(America/New_York) until " in notification.last_error
    assert telegram.messages == [] and smtp.received == []
    assert not notification.attempts.exists()
    # When they end it goes out.
    UserContact.objects.filter(user=user).update(quiet_hours="off")
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())
    delivery.deliver_now([notification.pk])
    notification.refresh_from_db()
    assert (notification.status, notification.channel) == (Status.SENT, "telegram")


def test_the_services_quiet_hours_apply_to_users_who_set_none(
    chain, telegram, make_user, promotions
):
    user = make_user(telegram_chat_id="76")
    now = timezone.now()
    start, end = (now - timedelta(hours=2)).time(), (now + timedelta(hours=2)).time()
    chain.NOTIFY_QUIET_WINDOW = policy.read_window(f"{start:%H:%M}-{end:%H:%M}")
    chain.TIME_ZONE = "UTC"
    assert send(user, promotions).status == Status.SCHEDULED
    UserContact.objects.filter(user=user).update(quiet_hours="off")  # theirs wins: none
    assert send(user, promotions).status == Status.SENT


def test_a_notification_that_expires_before_the_quiet_hours_end_expires_with_that_reason(
    chain, telegram, make_user, promotions
):
    user = make_user(telegram_chat_id="77")
    always_quiet(user)
    notification = send(user, promotions, expires_at=timezone.now() + timedelta(minutes=30))
    assert notification.status == Status.EXPIRED
    assert "before the quiet hours" in notification.last_error
    assert telegram.messages == []


def test_a_cap_holds_and_defers_the_rest_to_the_next_window(chain, telegram, make_user):
    capped = Category.objects.create(
        key="promos", name_en="Promos", cap_count=2, cap_window=timedelta(days=1)
    )
    user = make_user(telegram_chat_id="78")
    UserContact.objects.filter(user=user).update(timezone="Asia/Tokyo")
    sent = [send(user, capped, message=f"promo {n}") for n in range(3)]
    assert [n.status for n in sent] == [Status.SENT, Status.SENT, Status.SCHEDULED]
    assert telegram.delivered_to("78") == ["promo 0", "promo 1"]
    waiting = sent[2]
    tokyo_midnight = datetime.combine(
        timezone.now().astimezone(ZoneInfo("Asia/Tokyo")).date() + timedelta(days=1),
        time(),
        tzinfo=ZoneInfo("Asia/Tokyo"),
    )
    assert waiting.next_attempt_at == tokyo_midnight
    assert "over the cap of 2 per day for Promos" in waiting.last_error


def test_over_a_cap_that_skips_the_notification_ends_suppressed(chain, telegram, make_user):
    capped = Category.objects.create(
        key="promos",
        name_en="Promos",
        cap_count=1,
        cap_window=timedelta(hours=1),
        over_cap=Category.OverCap.SKIP,
    )
    user = make_user(telegram_chat_id="79")
    first, second = send(user, capped), send(user, capped)
    assert (first.status, second.status) == (Status.SENT, Status.SUPPRESSED)
    assert second.last_error == "over the cap of 1 per hour for Promos; skipped"


def test_a_round_that_sends_nothing_gives_its_cap_slot_back(chain, telegram, make_user):
    capped = Category.objects.create(
        key="promos", name_en="Promos", cap_count=1, cap_window=timedelta(days=1)
    )
    user = make_user(telegram_chat_id="80")
    telegram.per_chat["80"] = "500"  # the round fails: nothing sent
    failed = send(user, capped, channels=["telegram"])
    assert failed.status == Status.QUEUED  # a later round will try again
    assert CapCount.objects.get().count == 0
    telegram.per_chat.pop("80")
    assert send(user, capped).status == Status.SENT  # the slot was there to take
    assert CapCount.objects.get().count == 1


@pytest.mark.parametrize("upsert", [True, False], ids=["upsert", "update-then-insert"])
def test_a_cap_gives_exactly_its_count_of_slots_per_window(monkeypatch, make_user, upsert):
    """Both ways of taking a slot (one upsert; an UPDATE and an INSERT where SQLite is older
    than 3.35) give a window's first ``cap_count`` sends a slot and no more; a new window
    starts again."""
    from notifications.preferences import caps

    monkeypatch.setattr(caps, "_upserts", lambda: upsert)
    offers = Category.objects.create(
        key="offers", name_en="Offers", cap_count=2, cap_window=timedelta(days=1)
    )
    user = make_user()
    today = timezone.now().replace(microsecond=0)
    tomorrow = today + timedelta(days=1)
    assert [caps.reserve(user.pk, offers, today) for _ in range(4)] == [True, True, False, False]
    assert caps.reserve(user.pk, offers, tomorrow) is True
    counts = dict(CapCount.objects.values_list("window_start", "count"))
    assert counts == {today: 2, tomorrow: 1}
