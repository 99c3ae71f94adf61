"""The preference page in headless Chromium, as a user opens it from an email: on a phone
(360×740) and on a desktop, in English and Russian, with JavaScript on and off. Boxes ticked
and saved are what ``states_of`` returns; nothing is wider than the phone's screen; the page
loads cleanly under the Content-Security-Policy (the ``page`` fixture fails on a refusal)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.urls import reverse

from notifications.preferences import links
from notifications.preferences.services import states_of
from notifications.tests.browser import TIMEOUT_MS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
expect = pytest.importorskip("playwright.sync_api").expect

PHONE = {"width": 360, "height": 740}


def url_of(user) -> str:
    return reverse("preferences-page", args=[links.page_token(user.pk)])


def box(page, value: str):
    return page.locator(f'input[type="checkbox"][value="{value}"]')


def channels(user) -> dict[str, dict[str, bool]]:
    return {state.category.key: state.channels for state in states_of(user)}


def wider_than_the_screen(page, width: int) -> list[str]:
    """Every element of the page whose box reaches past ``width`` (read from the layout,
    so it works with JavaScript off too)."""
    wide = []
    for element in page.locator("body *").all():
        bounds = element.bounding_box()
        if bounds and bounds["x"] + bounds["width"] > width + 0.5:
            wide.append(element.evaluate("e => e.outerHTML.slice(0, 80)", None))
    return wide


def test_on_a_phone_the_page_fits_the_screen_and_saves_what_is_ticked(page, topics, make_user):
    ann = make_user(email="ann@example.com", language="en")
    page.set_viewport_size(PHONE)
    page.goto(url_of(ann))

    expect(page.get_by_role("heading", name="Notification settings")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert wider_than_the_screen(page, PHONE["width"]) == []
    expect(box(page, "orders:sms")).to_be_checked()
    expect(box(page, "promotions:email")).not_to_be_checked()
    label = page.locator("label", has=box(page, "promotions:email"))
    assert label.bounding_box()["height"] >= 44  # a thumb's target

    label.click()
    page.locator("label", has=box(page, "orders:sms")).click()
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(box(page, "promotions:email")).to_be_checked()
    expect(box(page, "orders:sms")).not_to_be_checked()
    assert channels(ann) == {
        "orders": {"telegram": True, "email": True, "sms": False},
        "promotions": {"telegram": False, "email": True, "sms": False},
    }
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_on_a_desktop_in_russian_saving_and_switching_to_english(page, topics, make_user):
    ivan = make_user(email="ivan@example.com", language="ru")
    page.goto(url_of(ivan))

    expect(page.get_by_role("heading", name="Настройки уведомлений")).to_be_visible()
    expect(page.get_by_role("group", name="Заказы")).to_contain_text(
        "Отправка и доставка ваших заказов."
    )
    expect(page.locator(".always")).to_contain_text("Безопасность")
    page.get_by_role("group", name="Акции").get_by_label("Telegram").check()
    page.get_by_role("button", name="Сохранить").click()

    expect(page.get_by_role("status")).to_have_text("Сохранено.")
    assert channels(ivan)["promotions"] == {"telegram": True, "email": False, "sms": False}

    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Notification settings")).to_be_visible()
    expect(page.get_by_role("group", name="Promotions").get_by_label("Telegram")).to_be_checked()
    expect(page.get_by_role("group", name="Promotions").get_by_label("Email")).not_to_be_checked()


@contextmanager
def phone(browser, live_server, **options) -> Iterator:
    """A page in a phone-sized context of its own (``options``: locale, JavaScript...); fails
    the test if the Content-Security-Policy refused anything it uses."""
    context = browser.new_context(
        base_url=live_server.url, viewport=PHONE, is_mobile=True, **options
    )
    context.set_default_timeout(TIMEOUT_MS)
    refused: list[str] = []
    page = context.new_page()
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    try:
        yield page
    finally:
        context.close()
    assert refused == []


def test_without_javascript_on_a_phone_the_page_works_the_same(
    browser, live_server, topics, make_user
):
    ann = make_user(email="ann@example.com")
    with phone(browser, live_server, locale="ru-RU", java_script_enabled=False) as page:
        response = page.goto(url_of(ann))
        assert response.status == 200
        # The contact names no language: the browser's is taken.
        expect(page.get_by_role("heading", name="Настройки уведомлений")).to_be_visible()
        assert wider_than_the_screen(page, PHONE["width"]) == []
        box(page, "orders:telegram").uncheck()
        box(page, "promotions:sms").check()
        page.get_by_role("button", name="Сохранить").click()

        expect(page.get_by_role("status")).to_have_text("Сохранено.")
        assert channels(ann) == {
            "orders": {"telegram": False, "email": True, "sms": True},
            "promotions": {"telegram": False, "email": False, "sms": True},
        }
        # Styled for everyone: the stylesheet is this service's own, and it loads.
        assert page.locator("button").evaluate("b => getComputedStyle(b).minHeight") == "48px"


def test_an_altered_link_shows_a_plain_styled_page_in_the_browsers_language(
    browser, live_server, topics, make_user
):
    ann = make_user(email="ann@example.com")
    token = links.page_token(ann.pk)
    altered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    with phone(browser, live_server, locale="ru-RU") as page:
        response = page.goto(reverse("preferences-page", args=[altered]))

        assert response.status == 404
        expect(page.get_by_role("heading", name="Эта ссылка не работает")).to_be_visible()
        expect(page.locator("form")).to_have_count(0)
        assert wider_than_the_screen(page, PHONE["width"]) == []
        assert page.locator("h1").evaluate("h => getComputedStyle(h).fontSize") == "25.6px"
