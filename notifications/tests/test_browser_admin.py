"""The admin as an operator uses it, in headless Chromium: log in, read, tick, act."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from notifications.models import Notification
from notifications.tests.browser import log_in

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

Status = Notification.Status
CHANGELIST = "/admin/notifications/notification/"


@pytest.fixture
def empty_queue():
    """The live server really rings the doorbell; leave the test queue as it was found."""
    from huey.contrib.djhuey import HUEY

    yield
    HUEY.flush()


def test_login_form_refuses_a_wrong_password_then_lets_the_operator_in(page, admin_credentials):
    username, password = admin_credentials
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))

    log_in(page, username, "not-the-password")
    expect(page.get_by_text("Please enter the correct username and password")).to_be_visible()

    log_in(page, username, password)
    expect(page.get_by_role("heading", name="Notifications and contacts")).to_be_visible()
    expect(page.get_by_role("link", name="Notifications", exact=True).first).to_be_visible()


def test_changelist_shows_the_delivery_order_and_each_channel_status(admin_page):
    admin_page.goto(CHANGELIST)
    status = admin_page.get_by_text("Delivery order:")
    expect(status).to_be_visible()
    expect(status).to_contain_text(re.compile(r"telegram.*→.*email.*→.*sms", re.S))
    expect(status).to_contain_text("not configured")  # the test settings configure no channel


def test_send_action_queues_the_two_ticked_pending_notifications(admin_page, empty_queue):
    alice = get_user_model().objects.create_user("alice", email="alice@example.com")
    Notification.objects.bulk_create(
        Notification(user=alice, message=message, status=Status.PENDING)
        for message in (
            "Your order #1042 has shipped.",
            "Your password was changed.",
            "Weekly digest: 3 new comments.",
        )
    )
    admin_page.goto(CHANGELIST)

    def row(message: str):
        return admin_page.get_by_role("row").filter(has_text=message)

    row("Your order #1042 has shipped.").get_by_role("checkbox").check()
    row("Your password was changed.").get_by_role("checkbox").check()
    expect(admin_page.get_by_text("2 of 3 selected")).to_be_visible()  # the admin's JS counts
    admin_page.get_by_label("Action:").select_option(label="Send selected notifications")
    admin_page.get_by_role("button", name="Go").click()

    message = admin_page.locator(".messagelist li")
    expect(message).to_have_text("2 queued")
    expect(message).to_have_class(re.compile(r"\bsuccess\b"))
    expect(row("Your order #1042 has shipped.")).to_contain_text("Queued")
    expect(row("Your password was changed.")).to_contain_text("Queued")
    expect(row("Weekly digest: 3 new comments.")).to_contain_text("Pending")
    assert sorted(Notification.objects.values_list("status", flat=True)) == [
        Status.PENDING,
        Status.QUEUED,
        Status.QUEUED,
    ]
