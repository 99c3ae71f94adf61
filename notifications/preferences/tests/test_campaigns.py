"""Campaigns with categories and local time: recipients who turned the category off on every
channel are skipped and counted with the reason; "at 10:00 in each recipient's local time"
gives each notification its own send_at in its recipient's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from notifications import services
from notifications.models import Campaign, CampaignSkip, Notification, UserContact
from notifications.preferences.defaults import default_category
from notifications.preferences.models import Category, Preference
from notifications.preferences.unsubscribe import category_of as policy_category

pytestmark = pytest.mark.django_db

User = get_user_model()


def people(*zones: str) -> list:
    users = []
    for n, zone in enumerate(zones):
        user = User.objects.create_user(f"p{n}", email=f"p{n}@example.com")
        UserContact.objects.filter(user=user).update(timezone=zone)
        users.append(user)
    return users


def test_recipients_who_turned_the_category_off_everywhere_are_skipped_with_the_reason(
    admin_user, rung
):
    promotions = Category.objects.create(key="promotions", name_en="Promotions")
    yes, no, email_only = people("", "", "")
    for channel in ("telegram", "email", "sms"):
        Preference.objects.create(user=no, category=promotions, channel=channel, enabled=False)
    Preference.objects.create(user=email_only, category=promotions, channel="sms", enabled=False)
    campaign = services.campaign_create(
        created_by=admin_user,
        user_ids=[yes.pk, no.pk, email_only.pk],
        message="Sale",
        category="promotions",
    )
    assert (campaign.recipients, campaign.skipped) == (2, 1)
    skip = CampaignSkip.objects.get(campaign=campaign)
    assert (skip.user_id, skip.reason) == (no.pk, CampaignSkip.Reason.TURNED_OFF)
    assert skip.channels == {"telegram": "turned_off", "email": "turned_off", "sms": "turned_off"}
    assert set(
        Notification.objects.filter(campaign=campaign).values_list("category_id", flat=True)
    ) == {promotions.pk}


def test_a_campaign_naming_no_category_stores_none_and_the_default_categorys_choices_apply(
    admin_user, rung
):
    """As a notification created alone without one: its rows name no category (the default
    category's rules apply to them, at creation and when sent), so no row of a million has
    a category to check."""
    general = default_category()
    yes, no = people("", "")
    for channel in ("telegram", "email", "sms"):
        Preference.objects.create(user=no, category=general, channel=channel, enabled=False)
    campaign = services.campaign_create(
        created_by=admin_user, user_ids=[yes.pk, no.pk], message="News"
    )
    assert (campaign.recipients, campaign.skipped) == (1, 1)
    skip = CampaignSkip.objects.get(campaign=campaign)
    assert (skip.user_id, skip.reason) == (no.pk, CampaignSkip.Reason.TURNED_OFF)
    made = Notification.objects.get(campaign=campaign)
    assert (made.user_id, made.category_id) == (yes.pk, None)
    assert policy_category(made) == general


def test_a_local_time_campaign_sends_at_ten_on_each_recipients_clock(admin_user, rung, settings):
    settings.TIME_ZONE = "UTC"
    berlin, new_york, unset = people("Europe/Berlin", "America/New_York", "")
    campaign = services.campaign_create(
        created_by=admin_user,
        user_ids=[berlin.pk, new_york.pk, unset.pk],
        message="Good morning",
        local_send_at="2030-03-10T10:00",
    )
    assert campaign.local_send_at == "2030-03-10T10:00"
    send_at = dict(Notification.objects.values_list("user_id", "send_at"))
    assert send_at[berlin.pk] == datetime(2030, 3, 10, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    assert send_at[new_york.pk] == datetime(2030, 3, 10, 10, tzinfo=ZoneInfo("America/New_York"))
    assert send_at[unset.pk] == datetime(2030, 3, 10, 10, tzinfo=ZoneInfo("UTC"))
    assert set(Notification.objects.values_list("status", flat=True)) == {"scheduled"}
    assert Campaign.objects.get().send_at is None


@pytest.mark.parametrize("wall", ["2030-03-10T10:00+03:00", "tomorrow at ten", "2030-13-01T10:00"])
def test_a_local_time_must_be_a_date_and_time_without_an_offset(admin_user, rung, wall):
    (user,) = people("")
    with pytest.raises(ValidationError, match="without an offset"):
        services.campaign_create(
            created_by=admin_user, user_ids=[user.pk], message="x", local_send_at=wall
        )
    assert not Campaign.objects.exists()


def test_an_unknown_category_is_refused_before_anything_is_stored(admin_user, rung):
    (user,) = people("")
    with pytest.raises(ValidationError, match="no category with the key 'nope'"):
        services.campaign_create(
            created_by=admin_user, user_ids=[user.pk], message="x", category="nope"
        )
    assert not Campaign.objects.exists() and not Notification.objects.exists()
