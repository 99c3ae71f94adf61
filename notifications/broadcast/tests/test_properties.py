"""The Stars accounting over random histories (Hypothesis): two paid campaigns with random
budgets, a random day cap or none, and a random run of steps: the Telegram sender sends a
campaign's message through the fake Bot API, which takes it or refuses it (403, 500, 429);
a message is prepared and its Stars reserved, then the round ends before it is sent; Stars
are reserved by hand, and given back. After every step:

- no campaign's spent exceeds its budget, and the day's never exceeds its cap; none is
  negative;
- the days' spent is the campaigns' spent;
- each campaign's spent is 0.1 Star for every flagged message of it the fake received, and
  for every reservation still held (every outcome here is known: nothing ambiguous).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications.broadcast import services as broadcast
from notifications.broadcast.models import CampaignStars, StarsDailyCount
from notifications.models import Campaign, Notification, UserContact
from notifications.senders.base import DeliveryError
from notifications.senders.telegram import TelegramSender

pytestmark = pytest.mark.django_db
CHATS = ("7001", "7002")  # campaign 0's recipient, campaign 1's
ANSWERS = ("ok", "ok", "403", "500", "429")

step_st = st.one_of(
    st.tuples(st.just("send"), st.integers(0, 1), st.sampled_from(ANSWERS)),
    st.tuples(st.just("abandon"), st.integers(0, 1)),
    st.tuples(st.just("reserve"), st.integers(0, 1)),
    st.tuples(st.just("give_back"), st.integers(0, 20)),
)
world_st = st.fixed_dictionaries(
    {
        "budgets": st.tuples(st.integers(1, 8), st.integers(1, 8)),  # tenths of a Star
        "day_cap": st.one_of(st.none(), st.integers(0, 12)),
        "steps": st.lists(step_st, max_size=30),
    }
)


def check(campaigns: list[Campaign], budgets, day_cap, telegram, held) -> None:
    rows = {row.campaign_id: row for row in CampaignStars.objects.filter(campaign__in=campaigns)}
    days = list(StarsDailyCount.objects.values_list("spent_tenths", flat=True))
    for n, campaign in enumerate(campaigns):
        spent = rows[campaign.pk].spent_tenths
        assert 0 <= spent <= budgets[n]
        flagged = sum(1 for m in telegram.paid_messages() if m["chat_id"] == CHATS[n])
        holding = sum(r.tenths for r in held if r.campaign_id == campaign.pk)
        assert spent == flagged + holding, (n, spent, flagged, holding)
    assert all(day >= 0 and (day_cap is None or day <= day_cap) for day in days), days
    assert sum(days) == sum(row.spent_tenths for row in rows.values())


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=world_st)
def test_spent_stars_stay_within_both_budgets_and_match_the_flagged_messages(
    paid_chain, telegram, world
):
    telegram.reset()
    broadcast.forget()
    StarsDailyCount.objects.all().delete()
    budgets, day_cap = world["budgets"], world["day_cap"]
    paid_chain.NOTIFY_TELEGRAM_STARS_DAILY_LIMIT = (
        None if day_cap is None else Decimal(day_cap) / 10
    )
    campaigns = [Campaign.objects.create(name=f"paid {n}") for n in range(2)]
    for campaign, budget in zip(campaigns, budgets, strict=True):
        CampaignStars.objects.create(campaign=campaign, budget_tenths=budget)
    sender, held = TelegramSender(), []

    def prepared_for(n: int):
        note = Notification(message="Flash sale", campaign_id=campaigns[n].pk)
        prepared = sender.prepare(note, UserContact(telegram_chat_id=CHATS[n]))
        sender.paces(prepared, 0)  # reserves its Stars, as delivery asks before sending
        return prepared

    for step in world["steps"]:
        if step[0] == "send":
            prepared = prepared_for(step[1])
            telegram.queue.append(step[2])
            try:
                sender.send_part(prepared, 0)
            except DeliveryError:
                pass
            sender.give_back(prepared)  # the round's end: nothing is left to give back
        elif step[0] == "abandon":
            sender.give_back(prepared_for(step[1]))  # the round ended before the send
        elif step[0] == "reserve":
            reservation = broadcast.reserve(campaigns[step[1]].pk)
            if reservation is not None:
                held.append(reservation)
        elif held:
            broadcast.give_back(held.pop(step[1] % len(held)))
        check(campaigns, budgets, day_cap, telegram, held)

    while held:
        broadcast.give_back(held.pop())
    check(campaigns, budgets, day_cap, telegram, held)
