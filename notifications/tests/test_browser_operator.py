"""The operator's admin in headless Chromium: a campaign to 200 users whose progress bar
reaches 100% while the real consumer sends; a template missing a variable refused; the
dashboard's numbers; the whole admin in Russian with no English left on the pages visited."""

from __future__ import annotations

import re
from datetime import timedelta

import polib
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone, translation

from notifications.models import Campaign, DeliveryAttempt, Notification, Template, UserContact

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

User = get_user_model()
Status = Notification.Status
USERS = "/admin/auth/user/"


@pytest.fixture(scope="module", autouse=True)
def _compiled_catalogue():
    call_command("compile_translations")
    translation.trans_real._translations.clear()


@pytest.fixture
def empty_queue():
    from huey.contrib.djhuey import HUEY

    yield
    HUEY.flush()


def people(count: int, prefix: str = "ivan", **contact) -> list:
    created = User.objects.bulk_create(
        User(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com") for i in range(count)
    )
    UserContact.objects.bulk_create(UserContact(user=u, **contact) for u in created)
    return created


@pytest.mark.e2e
def test_a_campaign_to_200_users_reaches_100_percent_while_the_consumer_sends(
    admin_page, start_consumer, smtp
):
    people(200)
    start_consumer(workers=8, TELEGRAM_BOT_TOKEN="")
    page = admin_page
    page.goto(USERS + "?is_staff__exact=0")
    page.locator("#action-toggle").check()
    page.get_by_role("button", name=re.compile(r"Select all 200 users")).click()
    page.get_by_label("Action:").select_option(label="Send a notification…")
    page.get_by_role("button", name="Go").click()

    expect(page.locator("#nf-audience")).to_contain_text("everyone matching the list's filter: 200")
    page.get_by_label("Message:").fill("Плановые работы сегодня в 02:00.")
    page.get_by_label("Subject:").fill("Плановые работы")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#nf-preview [data-nf-channel=email]")).to_contain_text("Плановые работы")
    page.get_by_role("button", name="Send to 200 recipients").click()

    expect(page.locator(".messagelist")).to_contain_text("started for 200 recipients")
    bar = page.locator("#campaign-progress .nf-progress")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=90_000)
    expect(page.locator('[data-nf-text="percent"]')).to_have_text("100 %")
    expect(page.locator('[data-nf-text="status_sent"]')).to_have_text("200")
    expect(page.locator('[data-nf-text="delivery_rate"]')).to_have_text("100.0 %")
    campaign = Campaign.objects.get()
    assert (campaign.state, campaign.recipients) == (Campaign.State.READY, 200)
    recipients = [to for mail in smtp.received for to in mail.rcpt_tos]
    assert sorted(recipients) == sorted(f"ivan{i}@example.com" for i in range(200))  # once each


def test_a_template_with_a_missing_variable_is_refused(admin_page):
    Template.objects.create(
        key="maintenance",
        name="Maintenance",
        telegram_text_en="Maintenance from <b>{{ start }}</b>",
        email_subject_en="Maintenance",
        email_text_en="Maintenance from {{ start }} to {{ end }}",
        sms_text_en="Maintenance {{ start }}",
    )
    people(3)
    page = admin_page
    page.goto(USERS + "?is_staff__exact=0")
    page.locator("#action-toggle").check()
    page.get_by_label("Action:").select_option(label="Send a notification…")
    page.get_by_role("button", name="Go").click()
    page.get_by_label("Template:").select_option(label="Maintenance")
    page.get_by_label("Template variables:").fill('{"start": "02:00"}')
    page.get_by_role("button", name="Preview").click()
    expect(page.locator(".errorlist")).to_contain_text("end, missing from the context")
    expect(page.get_by_role("button", name=re.compile("Send to"))).to_have_count(0)

    page.get_by_label("Template variables:").fill('{"start": "02:00", "end": "03:00"}')
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#nf-preview [data-nf-channel=telegram] b")).to_have_text("02:00")
    assert not Campaign.objects.exists() and not Notification.objects.exists()


def seed_dashboard(user) -> None:
    now = timezone.now()
    rows = [(Status.SENT, "telegram")] * 6 + [(Status.SENT, "email")] * 3 + [(Status.FAILED, "")]
    created = Notification.objects.bulk_create(
        Notification(
            user=user,
            message="Счёт готов",
            status=status,
            channel=channel,
            queued_at=now - timedelta(seconds=30),
            sent_at=now - timedelta(seconds=28) if channel else None,
        )
        for status, channel in rows
    )
    DeliveryAttempt.objects.create(
        notification=created[-1],
        channel="telegram",
        transport="telegram",
        outcome="permanent",
        error="Telegram 403: Forbidden: bot was blocked by the user",
        started_at=now,
    )


def test_the_dashboard_shows_the_numbers(admin_page, admin_user):
    seed_dashboard(admin_user)
    page = admin_page
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#nf-delivery-rate")).to_have_text("90.0 %")
    telegram = page.locator("#nf-by-channel tbody tr").filter(has_text="Telegram")
    expect(telegram.locator("td").nth(0)).to_have_text("6")  # sent
    expect(telegram.locator("td").nth(1)).to_have_text("1")  # failed attempts
    expect(telegram.locator("td").nth(6)).to_have_text("2.0 s")  # p50
    expect(page.locator("#nf-failures")).to_contain_text("bot was blocked by the user")
    expect(page.locator("svg.nf-chart rect").first).to_be_visible()
    page.get_by_role("link", name="30 days").click()
    expect(page.locator("#nf-delivery-rate")).to_have_text("90.0 %")


# --- Russian ----------------------------------------------------------------------------------

# Words that stay as they are in Russian text: names of products and of template variables.
NOT_ENGLISH = {
    "telegram",
    "sms",
    "email",
    "username",
    "maintenance",
    "start",
    "end",
    "admin",
    "gmail",
    "yahoo",
}


def english_words() -> set[str]:
    """Every word (3+ letters) of the English strings the project translates."""
    catalogue = polib.pofile(str(settings.BASE_DIR / "locale/ru/LC_MESSAGES/django.po"))
    words: set[str] = set()
    for entry in catalogue:
        for text in (entry.msgid, entry.msgid_plural or ""):
            text = re.sub(r"%\(\w+\)[sdr]|<[^>]+>|&\w+;", " ", text)
            words.update(w.lower() for w in re.findall(r"[A-Za-z]{3,}", text))
    return words - NOT_ENGLISH


VISIBLE_TEXT = """() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const found = [];
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || el.closest("script,style,code,pre,[data-nf-data],#user-tools strong")) continue;
    if (!el.checkVisibility()) continue;
    found.push(node.textContent.trim());
  }
  return found;
}"""


def english_on(page, vocabulary: set[str]) -> list[str]:
    """Visible text nodes holding a word of the English UI strings (data aside: names,
    messages, setting names, acronyms, template syntax, and a value to type, in «»)."""
    leaks = []
    for text in page.evaluate(VISIBLE_TEXT):
        code = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|«[^»]*»", " ", text)
        tokens = [t.strip(".,;:!?()«»“”\"'—…") for t in code.split()]
        tokens = [t for t in tokens if not re.search(r"[_@\d/.]|^[A-Z]+$", t)]
        words = {
            w.lower() for t in tokens for w in re.findall(r"[A-Za-z]{3,}", t) if not w.isupper()
        }
        if words & vocabulary:
            leaks.append(text)
    return leaks


def test_switching_to_russian_leaves_no_english_on_the_pages_visited(admin_page, admin_user):
    seed_dashboard(admin_user)
    chosen = people(2, prefix="olga")
    Template.objects.create(
        key="privet",
        name="Привет",
        telegram_text_ru="Привет, <b>{{ first_name }}</b>",
        email_subject_ru="Привет",
        email_text_ru="Привет, {{ first_name }}",
        sms_text_ru="Привет",
    )
    page = admin_page
    page.get_by_role("button", name="Русский").click()
    expect(page.locator("#site-name")).to_have_text("Служба уведомлений")
    vocabulary = english_words()
    visited = {}

    def visit(path: str) -> None:
        page.goto(path)
        visited[path] = english_on(page, vocabulary)

    visit("/admin/")
    visit("/admin/notifications/notification/")
    visit(f"/admin/notifications/notification/{Notification.objects.first().pk}/change/")
    visit("/admin/dashboard/?period=7d")
    visit("/admin/notifications/template/")
    visit("/admin/notifications/template/add/")
    visit(f"/admin/notifications/usercontact/{chosen[0].contact.pk}/change/")
    visit("/admin/notifications/usercontact/")
    visit(USERS)  # (a user's own page is left out: Django stores permission names in English)
    visit("/admin/notifications/notification/add/")

    page.goto("/admin/notifications/apikey/add/")
    page.get_by_label("Название:").fill("Магазин")
    page.get_by_role("button", name="Сохранить", exact=True).click()
    expect(page.locator("#api-key")).to_be_visible()
    visited["API key created"] = english_on(page, vocabulary)
    visit("/admin/notifications/apikey/")

    page.goto(USERS + "?is_staff__exact=0")
    page.locator("#action-toggle").check()
    page.get_by_label("Действие:").select_option(label="Отправить уведомление…")
    page.get_by_role("button", name="Выполнить").click()
    page.get_by_label("Сообщение:").fill("Плановые работы сегодня ночью.")
    page.get_by_role("button", name="Предпросмотр").click()
    expect(page.locator("#nf-preview")).to_be_visible()  # the page after the click, loaded
    visited["compose"] = english_on(page, vocabulary)
    page.get_by_role("button", name=re.compile("Отправить 2 получателям")).click()
    expect(page.locator("#campaign-progress")).to_be_visible()
    visited["campaign"] = english_on(page, vocabulary)

    leaks = {path: leaks for path, leaks in visited.items() if leaks}
    assert leaks == {}, "\n".join(
        f"{path}: {text!r}" for path, found in leaks.items() for text in found
    )
