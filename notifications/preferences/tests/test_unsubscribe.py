"""One-click unsubscribe (issue 17, RFC 8058 and RFC 2369): an email of a category users may
turn off carries ``List-Unsubscribe`` and ``List-Unsubscribe-Post``; a POST to that link,
with no login and no CSRF token, turns that category's email off for that user and repeats
safely; a GET shows the button; a tampered link changes nothing. Required mail carries none."""

from __future__ import annotations

import re
from email.message import EmailMessage

import pytest
import requests
from django.core import signing
from django.test import Client
from django.utils import timezone

from notifications import delivery, services
from notifications.models import DeliveryAttempt, Notification
from notifications.preferences import links, unsubscribe
from notifications.preferences.models import Preference
from notifications.preferences.services import states_of

pytestmark = pytest.mark.django_db(transaction=True)

Status = Notification.Status
BASE = "https://notify.example.com"


def send(user, category, message: str = "Your order shipped") -> Notification:
    notification = services.notification_create(
        user=user, message=message, category=category, channels=["email"]
    )
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now())
    delivery.deliver_now([notification.pk])
    notification.refresh_from_db()
    return notification


def link_in(mail: EmailMessage) -> str:
    header = mail["List-Unsubscribe"].strip()  # a long one is folded onto its next line
    assert header.startswith("<") and header.endswith(">"), header
    return header[1:-1]


def email_on(user, category) -> bool:
    (state,) = [s for s in states_of(user) if s.category == category]
    return state.channels["email"]


def test_an_email_of_a_category_users_may_turn_off_carries_the_one_click_headers(
    chain, smtp, topics, ann
):
    chain.PUBLIC_BASE_URL = BASE
    notification = send(ann, topics.orders)
    assert notification.status == Status.SENT
    (mail,) = smtp.received
    link = link_in(mail.message)
    assert re.fullmatch(rf"{BASE}/unsubscribe/[^/]+/", link)
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.message["Message-ID"]
    # The link is bound to this user, this category and the email channel.
    target = unsubscribe.target_of(link.removeprefix(f"{BASE}/unsubscribe/").rstrip("/"))
    assert (target.user, target.category, target.channel) == (ann, topics.orders, "email")
    # And the footer says it in words, beside the link to every choice.
    text = mail.message.get_body(("plain",)).get_content()
    assert f"Unsubscribe from Order updates: {link}" in text


def test_required_mail_carries_no_unsubscribe_header(chain, smtp, topics, ann):
    chain.PUBLIC_BASE_URL = BASE
    send(ann, topics.security, "Your code is 1234")
    (mail,) = smtp.received
    assert mail.message["List-Unsubscribe"] is None
    assert mail.message["List-Unsubscribe-Post"] is None
    assert "/unsubscribe/" not in mail.message.get_content()


def test_without_a_public_address_no_header_is_made_up(chain, smtp, topics, ann):
    chain.PUBLIC_BASE_URL = ""
    chain.NOTIFY_PUBLIC_URL = ""
    send(ann, topics.orders)
    (mail,) = smtp.received
    assert mail.message["List-Unsubscribe"] is None


def test_a_mail_providers_one_click_post_turns_that_categorys_email_off(
    chain, smtp, topics, ann, live_server
):
    """End to end, as Gmail does it: the link from the email's header, POSTed over HTTP with
    the RFC 8058 body, no cookie, no CSRF token. The next email of it is skipped; the
    other category still reaches the user."""
    chain.PUBLIC_BASE_URL = live_server.url
    send(ann, topics.orders)
    link = link_in(smtp.received[0].message)
    assert email_on(ann, topics.orders)

    response = requests.post(
        link,
        data="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
        allow_redirects=False,
    )
    assert response.status_code == 200
    assert not email_on(ann, topics.orders)

    again = send(ann, topics.orders, "Another update")
    assert again.status == Status.SUPPRESSED
    assert len(smtp.received) == 1  # nothing mailed
    assert again.attempts.get().error == "turned off Email for Order updates"
    Preference.objects.create(user=ann, category=topics.promotions, channel="email", enabled=True)
    assert send(ann, topics.promotions, "Sale").status == Status.SENT


@pytest.mark.parametrize("body", ["List-Unsubscribe=One-Click", "", "something=else"])
def test_the_post_needs_no_login_nor_csrf_and_repeats_safely(topics, ann, body):
    client = Client(enforce_csrf_checks=True)
    url = f"/unsubscribe/{unsubscribe.token(ann.pk, topics.orders.pk)}/"
    for _ in range(2):
        response = client.post(url, body, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200
        assert "You are unsubscribed" in response.content.decode()
    assert not email_on(ann, topics.orders)
    assert Preference.objects.filter(user=ann).count() == 1
    # Only that channel: Telegram and SMS of it stay as they were.
    (state,) = [s for s in states_of(ann) if s.category == topics.orders]
    assert state.channels == {"telegram": True, "email": False, "sms": True}


def test_the_get_shows_a_button_and_the_preference_page_and_changes_nothing(client, topics, ann):
    url = f"/unsubscribe/{unsubscribe.token(ann.pk, topics.orders.pk)}/"
    page = client.get(url).content.decode()
    assert "Unsubscribe from Order updates" in page
    assert '<form method="post"' in page and "<button" in page
    page_link = re.search(r'href="/preferences/([^/"]+)/"', page)
    assert links.user_id_of(page_link.group(1)) == ann.pk
    assert email_on(ann, topics.orders)
    russian = client.get(url + "?lang=ru").content.decode()
    assert "Отписаться" in russian and "Заказы" in russian


def test_the_page_speaks_the_users_language(client, topics, make_user):
    ivan = make_user(email="ivan@example.com", language="ru")
    page = client.get(f"/unsubscribe/{unsubscribe.token(ivan.pk, topics.orders.pk)}/")
    assert 'lang="ru"' in page.content.decode()


def _tampered(value: str) -> str:
    return value[:-1] + ("A" if value[-1] != "A" else "B")


@pytest.mark.parametrize(
    "make",
    [
        lambda ann, topics: _tampered(unsubscribe.token(ann.pk, topics.orders.pk)),
        # A token for another purpose (the preference page's) is no unsubscribe token.
        lambda ann, topics: links.page_token(ann.pk),
        # Well signed, but for a channel that doesn't exist, or naming no user.
        lambda ann, topics: signing.dumps(
            {"u": ann.pk, "c": topics.orders.pk, "ch": "fax"}, salt=unsubscribe.SALT
        ),
        lambda ann, topics: unsubscribe.token(ann.pk + 1000, topics.orders.pk),
        lambda ann, topics: "not-a-token",
    ],
)
def test_a_bad_token_gets_the_plain_404_page_and_changes_nothing(topics, ann, make):
    url = f"/unsubscribe/{make(ann, topics)}/"
    for method in ("get", "post"):
        response = getattr(Client(), method)(url)
        assert response.status_code == 404
        assert "This link does not work" in response.content.decode()
    assert not Preference.objects.exists()


def test_a_category_made_required_since_can_not_be_turned_off(topics, ann):
    url = f"/unsubscribe/{unsubscribe.token(ann.pk, topics.orders.pk)}/"
    topics.orders.required = True
    topics.orders.save()
    response = Client().post(url)
    assert response.status_code == 409
    assert "can't be turned off" in response.content.decode()
    assert not Preference.objects.exists()


def test_nothing_about_the_answer_is_cached_or_indexed(client, topics, ann):
    response = client.post(f"/unsubscribe/{unsubscribe.token(ann.pk, topics.orders.pk)}/")
    assert "no-store" in response["Cache-Control"]
    assert response["X-Robots-Tag"] == "noindex, nofollow"


def test_the_unsubscribed_emails_attempt_is_a_skip_not_a_send(chain, smtp, topics, ann):
    """The skip happens before any send: no SMTP transaction at all."""
    Preference.objects.create(user=ann, category=topics.orders, channel="email", enabled=False)
    notification = send(ann, topics.orders)
    assert smtp.received == []
    assert notification.attempts.get().outcome == DeliveryAttempt.Outcome.SKIPPED


def _preview(admin_client, user, category) -> str:
    data = {
        "action": "send_notification",
        "_selected_action": [str(user.pk)],
        "_compose": "1",
        "_preview": "1",
        "message": "Sale!",
        "subject": "",
        "context": "",
        "send_at_0": "",
        "send_at_1": "",
        "category": str(category.pk),
    }
    response = admin_client.post("/admin/auth/user/", data)
    assert response.status_code == 200
    return response.content.decode()


def test_the_compose_preview_says_whether_the_email_carries_the_link(
    admin_client, settings, topics, ann
):
    settings.PUBLIC_BASE_URL = ""
    settings.NOTIFY_PUBLIC_URL = ""
    page = _preview(admin_client, ann, topics.orders)
    assert "PUBLIC_BASE_URL is not set: this email goes without a one-click unsubscribe" in page
    settings.PUBLIC_BASE_URL = BASE
    page = _preview(admin_client, ann, topics.orders)
    assert "Carries a one-click unsubscribe link (List-Unsubscribe) for “Order updates”" in page
    page = _preview(admin_client, ann, topics.security)
    assert "“Security” is required: its email carries no unsubscribe link." in page
