"""A campaign's page and the compose page as an operator meets them in Chromium (issue 15):
the fields below the live box move with it and the skipped list fills in with no reload,
"Cancel the rest" is offered only while something is left, the Russian page fits 1280 px and
says "Просмотр рассылки", the compose page has the admin's form styles, calendar and clock,
a blank "Template variables" stays blank after Preview, and its "Paid broadcast (Telegram)"
box's budget is named in the preview."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import translation

from notifications import services
from notifications.models import Campaign, Notification, UserContact

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

User = get_user_model()
Status = Notification.Status
USERS = "/admin/auth/user/"


@pytest.fixture(scope="module", autouse=True)
def _compiled_catalogue():
    call_command("compile_translations")
    translation.trans_real._translations.clear()


def people(count: int, prefix: str, **contact) -> list:
    created = User.objects.bulk_create(
        User(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com" if contact else "")
        for i in range(count)
    )
    UserContact.objects.bulk_create(UserContact(user=u, **contact) for u in created)
    return created


def compose_for_all_on_the_page(page) -> None:
    page.goto(USERS + "?is_staff__exact=0")
    page.locator("#action-toggle").check()
    page.get_by_label("Action:").select_option(label="Send a notification…")
    page.get_by_role("button", name="Go").click()


@pytest.mark.e2e
def test_the_whole_campaign_page_moves_together_with_no_reload(
    admin_page, start_consumer, smtp, settings
):
    people(25, "mail", language="en")  # an address: email
    people(5, "nowhere")  # no address on any channel: skipped
    # More recipients than one chunk: the consumer creates them, after the page has loaded.
    settings.NOTIFY_CAMPAIGN_CHUNK = 10
    start_consumer(workers=4, TELEGRAM_BOT_TOKEN="", NOTIFY_CAMPAIGN_CHUNK="10")
    page = admin_page
    compose_for_all_on_the_page(page)
    page.get_by_label("Message:").fill("Maintenance tonight")
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name="Send to 30 recipients").click()
    expect(page.locator(".messagelist")).to_contain_text("started for 30 recipients")
    page.evaluate("window.nfNotReloaded = true")

    expect(page.locator('[data-nf-text="status_sent"]')).to_have_text("25", timeout=60_000)
    expect(page.locator(".field-state .readonly")).to_have_text("Created")
    expect(page.locator(".field-recipients .readonly")).to_have_text("25")
    expect(page.locator(".field-skipped .readonly")).to_have_text("5")
    expect(page.locator(".field-created_all_at .readonly")).not_to_have_text("-")
    expect(page.locator("#skips-group tbody tr")).to_have_count(5)
    expect(page.locator("#skips-group")).to_contain_text("no address on any channel")
    expect(page.get_by_role("button", name="Cancel the rest")).to_have_count(0)  # done
    assert page.evaluate("window.nfNotReloaded") is True
    campaign = Campaign.objects.get()
    assert (campaign.state, campaign.recipients, campaign.skipped) == (Campaign.State.READY, 25, 5)


def test_cancel_the_rest_is_not_offered_on_a_finished_campaign(admin_page, admin_user):
    people(3, "done", language="en")
    campaign = services.campaign_create(
        created_by=admin_user,
        user_ids=list(
            User.objects.filter(username__startswith="done").values_list("pk", flat=True)
        ),
        message="hi",
    )
    page = admin_page
    page.goto(f"/admin/notifications/campaign/{campaign.pk}/change/")
    expect(page.get_by_role("button", name="Cancel the rest")).to_be_visible()  # 3 queued
    Notification.objects.filter(campaign=campaign).update(status=Status.SENT, channel="email")
    page.reload()
    expect(page.locator('[data-nf-text="percent"]')).to_have_text("100 %")
    expect(page.get_by_role("button", name="Cancel the rest")).to_have_count(0)


def test_the_russian_campaign_page_fits_1280_px_and_declines_its_title(admin_page, admin_user):
    people(4, "rus", language="ru")
    campaign = services.campaign_create(
        created_by=admin_user,
        user_ids=list(User.objects.filter(username__startswith="rus").values_list("pk", flat=True)),
        message="Плановые работы",
    )
    page = admin_page
    page.get_by_role("button", name="Русский").click()
    page.goto(f"/admin/notifications/campaign/{campaign.pk}/change/")
    expect(page.locator("#campaign-progress")).to_be_visible()
    expect(page.locator("h1")).to_have_text("Просмотр рассылки")
    assert "Просмотр рассылки" in page.title()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, f"the page is {width} px wide in a 1280 px window"


def test_the_compose_page_has_the_admins_form_styles_calendar_and_clock(admin_page):
    people(2, "form", language="en")
    page = admin_page
    compose_for_all_on_the_page(page)
    # The admin's form styles: labels in a column of their own, fields beside them.
    label = page.locator(".field-message label")
    field = page.locator("#id_message")
    assert label.bounding_box()["width"] >= 150
    assert abs(label.bounding_box()["y"] - field.bounding_box()["y"]) < 20
    # "Send at" has the admin's calendar and clock, with their icons.
    for shortcut in ("#calendarlink0 .date-icon", "#clocklink0 .clock-icon"):
        icon = page.locator(shortcut)
        expect(icon).to_be_visible()
        image = icon.evaluate("el => getComputedStyle(el).backgroundImage")
        assert image.startswith("url("), f"{shortcut} has no icon"
    page.locator("#calendarlink0").click()
    expect(page.locator("#calendarbox0")).to_be_visible()
    page.locator("#calendarbox0").get_by_role("link", name="Today").click()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", page.locator("#id_send_at_0").input_value())
    page.locator("#id_send_at_0").fill("")

    page.get_by_label("Message:").fill("Hello")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#nf-preview")).to_be_visible()
    expect(page.get_by_label("Template variables:")).to_have_value("")  # not "null"
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_label("Template variables:")).to_have_value("")

    # Paid broadcast: the box and its budget, which the preview names.
    page.get_by_label("Paid broadcast (Telegram):").check()
    page.get_by_label("Stars budget:").fill("5")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#nf-paid-broadcast")).to_contain_text("up to 5.0 Stars")


def test_the_compose_form_sends_at_10_in_each_recipients_local_time(admin_page):
    """Issue 16: "In each recipient's local time" on the compose page: 10:00 tomorrow is 10:00
    in Berlin for one recipient and 10:00 in New York for the other, in the chosen category."""
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    from notifications.preferences.models import Category

    promotions = Category.objects.create(key="promotions", name_en="Promotions")
    (berlin,) = people(1, "berlin", language="en", timezone="Europe/Berlin")
    (new_york,) = people(1, "newyork", language="en", timezone="America/New_York")
    day = date.today() + timedelta(days=2)
    page = admin_page
    compose_for_all_on_the_page(page)
    page.get_by_label("Message:").fill("Our sale starts now")
    page.locator("#id_send_at_0").fill(day.isoformat())
    page.locator("#id_send_at_1").fill("10:00:00")
    page.get_by_label("In each recipient's local time").check()
    page.get_by_label("Category:").select_option(label="Promotions")
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name="Send to 2 recipients").click()
    expect(page.locator(".messagelist")).to_contain_text("started for 2 recipients")
    expected = {
        berlin.pk: datetime.combine(
            day, datetime.min.time().replace(hour=10), ZoneInfo("Europe/Berlin")
        ),
        new_york.pk: datetime.combine(
            day, datetime.min.time().replace(hour=10), ZoneInfo("America/New_York")
        ),
    }
    made = {n.user_id: n for n in Notification.objects.all()}
    assert {pk: n.send_at for pk, n in made.items()} == expected
    assert {n.category_id for n in made.values()} == {promotions.pk}
    assert {n.status for n in made.values()} == {Status.SCHEDULED}
