"""Paid broadcast on the compose page ("Send a notification…" on the users' list): the box and
its budget, the errors that refuse it, the preview that names the budget, and the campaign it
creates; the service refuses the same."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from notifications.broadcast.models import CampaignStars
from notifications.broadcast.tests.helpers import recipients
from notifications.models import Campaign
from notifications.services import campaign_create
from notifications.tests.test_views import compose as post_compose

pytestmark = pytest.mark.django_db


def compose(client, ids, **fields):
    """The compose page posted for ``ids`` with a message (the users' list's own helper)."""
    return post_compose(client, ids, **{"message": "Flash sale", **fields})


def errors(response) -> dict[str, list[str]]:
    return {name: list(messages) for name, messages in response.context["form"].errors.items()}


@pytest.mark.parametrize(
    ("fields", "wanted"),
    [
        ({}, {"stars_budget": ["Give a Stars budget: paid broadcast spends 0.1 Star a message."]}),
        (
            {"stars_budget": "0"},
            {"stars_budget": ["Give a budget above 0 Stars, in tenths of a Star (e.g. 50.5)."]},
        ),
        (
            {"stars_budget": "-5"},
            {"stars_budget": ["Give a budget above 0 Stars, in tenths of a Star (e.g. 50.5)."]},
        ),
        (
            {"stars_budget": "10", "channels": ["email", "sms"]},
            {"paid_broadcast": ["Paid broadcast is Telegram's: tick Telegram in the channels."]},
        ),
    ],
    ids=["no_budget", "zero", "negative", "no_telegram"],
)
def test_the_compose_form_refuses_paid_broadcast_without_a_budget_or_telegram(
    admin_client, rung, fields, wanted
):
    users = recipients(2, prefix="p")
    for button in ("_preview", "_send"):
        response = compose(
            admin_client, [u.pk for u in users], button=button, paid_broadcast="on", **fields
        )
        assert response.status_code == 200
        assert errors(response) == wanted
        assert response.context["preview"] is None
    assert not Campaign.objects.exists()


def test_a_budget_in_hundredths_of_a_star_is_refused(admin_client, rung):
    users = recipients(1, prefix="p")
    response = compose(
        admin_client, [u.pk for u in users], paid_broadcast="on", stars_budget="1.25"
    )
    assert list(errors(response)) == ["stars_budget"]


def test_the_preview_names_the_budget_and_sending_creates_the_paid_campaign(
    admin_client, rung, settings
):
    settings.NOTIFY_TELEGRAM_STARS_PER_MESSAGE = Decimal("0.1")
    users = recipients(3, prefix="p")
    ids = [u.pk for u in users]

    preview = compose(admin_client, ids, paid_broadcast="on", stars_budget="0.2")
    assert errors(preview) == {}
    (telegram,) = [row for row in preview.context["preview"] if row["channel"] == "telegram"]
    assert telegram["paid"] == (
        "Paid broadcast: up to 0.2 Stars at 0.1 Star a message: the first 2 Telegram messages "
        "go flagged (each part of a split text is one), the rest at the free pace. Flagging "
        "all 3 would take 0.3 Stars."
    )
    assert 'id="nf-paid-broadcast"' in preview.text

    sent = compose(admin_client, ids, button="_send", paid_broadcast="on", stars_budget="0.2")
    assert sent.status_code == 302
    stars = CampaignStars.objects.get(campaign=Campaign.objects.get())
    assert (stars.budget, stars.spent) == (Decimal("0.2"), Decimal("0"))


def test_a_budget_without_the_box_ticked_is_ignored(admin_client, rung):
    users = recipients(1, prefix="p")
    sent = compose(admin_client, [u.pk for u in users], button="_send", stars_budget="5")
    assert sent.status_code == 302
    assert Campaign.objects.exists() and not CampaignStars.objects.exists()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"stars_budget": None}, "stars_budget"),
        ({"stars_budget": Decimal("0")}, "stars_budget"),
        ({"stars_budget": Decimal("0.05")}, "stars_budget"),
        ({"stars_budget": Decimal("3"), "channels": ["email"]}, "paid_broadcast"),
    ],
)
def test_the_service_refuses_paid_broadcast_before_anything_is_stored(
    admin_user, rung, options, field
):
    (user,) = recipients(1, prefix="p")
    with pytest.raises(ValidationError) as refused:
        campaign_create(
            created_by=admin_user,
            user_ids=[user.pk],
            message="Flash sale",
            paid_broadcast=True,
            **options,
        )
    assert list(refused.value.message_dict) == [field]
    assert not Campaign.objects.exists() and not CampaignStars.objects.exists()
