"""Categories and a user's preferences in the admin, in headless Chromium: a bad category is
refused beside its field, the default channels are checkboxes, and the boxes ticked on a
contact's page are what ``states_of`` returns. The ``page`` fixture fails the test if the
Content-Security-Policy refuses anything the pages use."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from notifications.preferences.defaults import default_category
from notifications.preferences.models import Category
from notifications.preferences.services import states_of

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect


def test_an_operator_makes_a_category_then_ticks_it_on_a_users_contact_page(admin_page):
    # The migration's "General" is gone after an earlier browser test's flush: make it again.
    default_category()
    page = admin_page
    page.goto(reverse("admin:preferences_category_add"))
    page.get_by_label("Key:").fill("promotions")
    page.get_by_label("Name (English):").fill("Promotions")
    page.get_by_label("Required").check()
    page.get_by_label("Opt-in").check()
    page.get_by_label("Email", exact=True).check()
    page.get_by_label("At most:").fill("0")
    page.get_by_label("Cap window:").fill("1 00:00:00")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_text("A required category can't be opt-in")).to_be_visible()
    expect(page.get_by_text("A cap is at least 1 notification")).to_be_visible()
    assert not Category.objects.filter(key="promotions").exists()

    page.get_by_label("Required").uncheck()
    page.get_by_label("At most:").fill("3")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    expect(page.locator("#result_list")).to_contain_text("3 per 1 day")
    category = Category.objects.get(key="promotions")
    assert (category.opt_in, category.required) == (True, False)
    assert (category.default_channels, category.cap_count) == (["email"], 3)
    assert category.cap_window == timedelta(days=1)

    user = get_user_model().objects.create_user("ann")
    page.goto(reverse("admin:notifications_usercontact_change", args=[user.contact.pk]))
    section = page.locator("fieldset", has=page.get_by_role("heading", name="Preferences"))
    expect(section.get_by_role("row", name="Promotions")).to_contain_text("opt-in")
    promotions_email = section.get_by_label("Promotions: Email")
    expect(promotions_email).not_to_be_checked()
    promotions_email.check()
    section.get_by_label("General: SMS").uncheck()
    page.get_by_role("button", name="Save and continue editing").click()

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    expect(section.get_by_label("Promotions: Email")).to_be_checked()
    expect(section.get_by_label("General: SMS")).not_to_be_checked()
    channels = {state.category.key: state.channels for state in states_of(user)}
    assert channels["promotions"] == {"telegram": False, "email": True, "sms": False}
    assert channels["general"] == {"telegram": True, "email": True, "sms": False}
