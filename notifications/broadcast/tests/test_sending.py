"""Paid broadcast on the real delivery path (``delivery.deliver_now``: claim, chain, record, as
a worker does), against the fake Bot API on 127.0.0.1: which messages carry
``allow_paid_broadcast``, what the Stars budgets let through, when Stars come back, and which
pace each message holds. One end-to-end test runs the real consumer."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from notifications import pacing
from notifications.broadcast.models import CampaignStars, StarsDailyCount
from notifications.broadcast.tests.helpers import chats_of, ids_of, recipients
from notifications.delivery import deliver_now
from notifications.models import Campaign, Notification
from notifications.operations import metrics
from notifications.senders.telegram import BOT_PACE, PAID_PACE
from notifications.services import campaign_create, notification_create
from notifications.tests.fixtures import wait_for

pytestmark = pytest.mark.django_db
Status = Notification.Status


def spent(campaign: Campaign) -> Decimal:
    return CampaignStars.objects.get(campaign=campaign).spent


def day_spent() -> Decimal:
    return sum((row.spent for row in StarsDailyCount.objects.all()), Decimal(0))


def flagged_chats(telegram) -> list[str]:
    return [m["chat_id"] for m in telegram.paid_messages()]


def stars_counted() -> float:
    return metrics.REGISTRY.get_sample_value("notify_telegram_stars_total") or 0.0


def test_a_paid_campaigns_messages_carry_the_flag_and_spend_a_tenth_of_a_star_each(
    campaign, telegram
):
    counted_before = stars_counted()
    paid, free = campaign(4, stars="10"), campaign(3)

    deliver_now(ids_of(paid, free))

    assert set(Notification.objects.values_list("status", flat=True)) == {Status.SENT}
    assert sorted(flagged_chats(telegram)) == sorted(chats_of(paid))
    unflagged = [m for m in telegram.messages if "allow_paid_broadcast" not in m]
    assert sorted(m["chat_id"] for m in unflagged) == sorted(chats_of(free))
    assert spent(paid) == Decimal("0.4") == day_spent()
    assert not CampaignStars.objects.filter(campaign=free).exists()
    assert stars_counted() - counted_before == pytest.approx(0.4)


def test_a_budget_flags_as_many_messages_as_it_pays_for_and_the_rest_still_go(campaign, telegram):
    paid = campaign(7, stars="0.3")

    deliver_now(ids_of(paid))

    assert Notification.objects.filter(campaign=paid, status=Status.SENT).count() == 7
    assert len(telegram.messages) == 7
    assert len(telegram.paid_messages()) == 3  # floor(0.3 / 0.1)
    assert spent(paid) == Decimal("0.3")


def test_each_part_of_a_split_message_is_a_flagged_message_of_its_own(campaign, telegram):
    paid = campaign(2, stars="0.3", message=("word " * 1000).strip())  # 4,999 characters

    deliver_now(ids_of(paid))

    assert len(telegram.messages) == 4  # two parts each
    assert len(telegram.paid_messages()) == 3  # the budget held three
    assert spent(paid) == Decimal("0.3")
    assert set(Notification.objects.values_list("status", flat=True)) == {Status.SENT}


def test_the_day_cap_holds_across_two_campaigns(campaign, telegram, paid_chain):
    paid_chain.NOTIFY_TELEGRAM_STARS_DAILY_LIMIT = Decimal("0.5")
    first, second = campaign(4, stars="10"), campaign(4, stars="10")

    deliver_now(ids_of(first))
    deliver_now(ids_of(second))

    assert len(telegram.messages) == 8  # every one delivered
    assert len(telegram.paid_messages()) == 5  # the day's 0.5 Stars, over both campaigns
    assert (spent(first), spent(second)) == (Decimal("0.4"), Decimal("0.1"))
    assert day_spent() == Decimal("0.5")


def test_a_refused_send_gives_its_stars_back_and_an_ambiguous_one_keeps_them(
    campaign, telegram, paid_chain
):
    paid_chain.NOTIFY_HTTP_TIMEOUT = 0.5
    telegram.hang = 1.5
    paid = campaign(4, stars="10")
    ok, blocked, broken, slow = sorted(chats_of(paid))
    telegram.per_chat.update({blocked: "403", broken: "500", slow: "accept_then_hang"})

    deliver_now(ids_of(paid))

    # Telegram took the first and the last (the last answered too late: a timeout).
    assert sorted(flagged_chats(telegram)) == sorted([ok, slow])
    assert spent(paid) == Decimal("0.2") == day_spent()
    by_chat = dict(
        Notification.objects.filter(campaign=paid).values_list(
            "user__contact__telegram_chat_id", "status"
        )
    )
    assert by_chat == {
        ok: Status.SENT,
        blocked: Status.FAILED,
        broken: Status.QUEUED,  # a later round
        slow: Status.QUEUED,  # its outcome unknown: a later round, which pays again
    }


def test_stars_reserved_for_a_part_not_sent_come_back_when_the_round_ends(
    campaign, telegram, paid_chain
):
    """The second part's chat slot is a second away, past the pacing horizon: the round ends
    before it, and the Stars it reserved come back; the next round sends and pays for it."""
    paid_chain.NOTIFY_TELEGRAM_CHAT_RATE = 1.0
    paid_chain.NOTIFY_TELEGRAM_PACE_MAX_WAIT = 0.3
    paid = campaign(1, stars="10", message=("word " * 1000).strip())
    (pk,) = ids_of(paid)

    deliver_now([pk])

    assert len(telegram.paid_messages()) == 1
    assert spent(paid) == Decimal("0.1") == day_spent()
    assert Notification.objects.get(pk=pk).status == Status.QUEUED

    def sent_in_a_later_round() -> bool:
        deliver_now([pk])
        return Notification.objects.get(pk=pk).status == Status.SENT

    wait_for(sent_in_a_later_round, 10, "the second part to go")
    assert len(telegram.paid_messages()) == 2
    assert spent(paid) == Decimal("0.2") == day_spent()


class Recording:
    """The real pacing schedule, with the paces each booking asked for and each push back."""

    def __init__(self, real: pacing.Schedule) -> None:
        self.real = real
        self.booked: list[str] = []
        self.pushed: list[str] = []

    def book_all(self, names, intervals, horizon, tolerance):
        self.booked += names
        return self.real.book_all(names, intervals, horizon, tolerance)

    def push_back(self, name, seconds):
        self.pushed.append(name)
        return self.real.push_back(name, seconds)

    def paused_until(self, names):
        return self.real.paused_until(names)

    def bot_paces(self) -> set[str]:
        """The paces booked that are not a chat's, and forgets them."""
        paces = {name for name in self.booked if not name.startswith("telegram:chat:")}
        self.booked = []
        return paces


@pytest.fixture
def schedule(monkeypatch) -> Recording:
    recording = Recording(pacing.schedule())
    monkeypatch.setattr(pacing, "schedule", lambda: recording)
    return recording


def test_other_traffic_keeps_the_free_pace_while_a_paid_campaign_uses_the_paid_one(
    campaign, telegram, paid_chain, schedule, admin_user
):
    paid_chain.NOTIFY_TELEGRAM_RATE = 25.0
    paid_chain.NOTIFY_TELEGRAM_CHAT_RATE = 1.0
    paid_chain.NOTIFY_TELEGRAM_PAID_RATE = 1000.0
    paid, free = campaign(3, stars="10"), campaign(2)
    (user,) = recipients(1, prefix="alone")
    single = notification_create(user=user, message="Your order has shipped")

    deliver_now(ids_of(paid))
    assert schedule.bot_paces() == {PAID_PACE}

    deliver_now([*ids_of(free), single.pk])
    assert schedule.bot_paces() == {BOT_PACE}
    assert len(telegram.paid_messages()) == 3 and len(telegram.messages) == 6


def test_a_budget_used_up_sends_the_rest_at_the_free_pace(campaign, paid_chain, schedule):
    paid_chain.NOTIFY_TELEGRAM_RATE = 25.0
    paid_chain.NOTIFY_TELEGRAM_PAID_RATE = 1000.0
    paid = campaign(3, stars="0.1")

    deliver_now(ids_of(paid))

    assert schedule.bot_paces() == {PAID_PACE, BOT_PACE}
    assert spent(paid) == Decimal("0.1")


def test_a_429_to_a_flagged_send_pauses_the_paid_pace_and_gives_the_stars_back(
    campaign, telegram, schedule
):
    telegram.queue.append("429")
    telegram.retry_after = 1
    paid = campaign(1, stars="10")

    deliver_now(ids_of(paid))

    assert schedule.pushed == [PAID_PACE]  # the free traffic's pace is not held up
    assert telegram.paid_messages() == []
    assert spent(paid) == Decimal("0") == day_spent()
    assert Notification.objects.get(campaign=paid).status == Status.QUEUED


def test_the_dashboard_and_the_campaign_page_show_the_stars_spent(
    campaign, telegram, paid_chain, admin_client
):
    paid_chain.NOTIFY_TELEGRAM_STARS_DAILY_LIMIT = Decimal("50")
    paid = campaign(3, stars="1.5")
    deliver_now(ids_of(paid))

    dashboard = admin_client.get(reverse("notify-dashboard"))
    assert "0.3 of 50.0 Telegram Stars spent" in dashboard.text
    page = admin_client.get(reverse("admin:notifications_campaign_change", args=[paid.pk]))
    assert "0.3 of 1.5 Telegram Stars spent" in page.text
    progress = admin_client.get(reverse("notify-campaign-progress", args=[paid.pk]))
    assert progress.json()["fields"]["paid_broadcast"] == "0.3 of 1.5 Telegram Stars spent"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_paid_campaign_through_the_consumer_flags_what_its_budget_pays_for(
    start_consumer, telegram, admin_user
):
    start_consumer(workers=4)
    users = recipients(10, prefix="e2e")
    paid = campaign_create(
        created_by=admin_user,
        user_ids=[user.pk for user in users],
        message="Flash sale",
        channels=["telegram"],
        paid_broadcast=True,
        stars_budget=Decimal("0.5"),
    )

    wait_for(
        lambda: Notification.objects.filter(campaign=paid, status=Status.SENT).count() == 10,
        60,
        "the campaign to be sent",
    )
    assert len(telegram.messages) == 10
    assert len(telegram.paid_messages()) == 5
    assert spent(paid) == Decimal("0.5") == day_spent()
