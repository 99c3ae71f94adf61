"""The preference page a user reaches without a login, by the signed link in their emails and
the bot's ``/settings``: in their language, each topic with a box per channel, saved through
the services with Django's CSRF protection; an altered or expired link gets a plain page that
tells nothing of the server; every request costs its address one anonymous request."""

from __future__ import annotations

import io
import logging
import re
import secrets
from datetime import timedelta

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notification_service.gunicorn_logging import mask
from notifications.models import UserContact
from notifications.preferences import links
from notifications.preferences.models import Preference
from notifications.preferences.services import states_of

pytestmark = pytest.mark.django_db


def url_of(user, **query) -> str:
    path = reverse("preferences-page", args=[links.page_token(user.pk)])
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def boxes(html: str) -> dict[str, bool]:
    """Each checkbox's value → ticked, as the page shows them."""
    found = re.findall(r'<input type="checkbox" name="on" value="([^"]+)"( checked)?>', html)
    return {value: bool(checked) for value, checked in found}


def text_of(response) -> str:
    return response.content.decode()


def csrf_client() -> Client:
    """A browser-like client: Django's CSRF check is enforced, as for a real visitor."""
    return Client(enforce_csrf_checks=True)


def form_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def save(client: Client, url: str, ticked: list[str], shown=("orders", "promotions")):
    page = client.get(url)
    data = {"csrfmiddlewaretoken": form_token(text_of(page)), "shown": list(shown), "on": ticked}
    return client.post(url, data)


def channel_states(user) -> dict[str, dict[str, bool]]:
    return {state.category.key: state.channels for state in states_of(user)}


# --- what the page shows ------------------------------------------------------------------------


def test_the_page_lists_each_topic_with_a_box_per_channel_and_the_required_as_always_sent(
    client, topics, ann
):
    response = client.get(url_of(ann))

    assert response.status_code == 200
    html = text_of(response)
    assert "Order updates" in html and "Shipping and delivery of your orders." in html
    assert "Promotions" in html and "Offers and discounts" in html
    assert boxes(html) == {
        "orders:telegram": True,
        "orders:email": True,
        "orders:sms": True,
        "promotions:telegram": False,  # opt-in: off until the user turns it on
        "promotions:email": False,
        "promotions:sms": False,
    }
    # Required: listed as always sent, never a box.
    always = html.split("Always sent", 1)[1]
    assert "Security" in always and "Sign-in codes" in always
    assert not any(value.startswith("security:") for value in boxes(html))
    # Honest about channels that can't reach her, whatever she ticks.
    assert "Telegram: not connected, so nothing comes there." in html
    assert "SMS: we have no number for you, so nothing comes by SMS." in html
    assert "Email:" not in html  # she has an address, and email is on
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_the_page_is_private_uncached_and_has_no_inline_script_or_style(client, topics, ann):
    response = client.get(url_of(ann))

    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "same-origin"  # the token never leaves in a Referer
    assert "noindex" in response["X-Robots-Tag"]
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    html = text_of(response)
    assert "<script" not in html and "<style" not in html and " style=" not in html
    assert '<link rel="stylesheet" href="/static/preferences/page.css">' in html


def test_the_page_speaks_the_contacts_language_then_the_browsers_then_the_services(
    client, topics, make_user, settings
):
    ivan = make_user(email="ivan@example.com", language="ru")
    russian = text_of(client.get(url_of(ivan), HTTP_ACCEPT_LANGUAGE="en"))
    assert '<html lang="ru">' in russian
    assert "Настройки уведомлений" in russian and "Заказы" in russian
    assert "Отправка и доставка ваших заказов." in russian and "Эл. почта" in russian
    assert "Безопасность" in russian.split("Всегда приходят", 1)[1]

    nobody = make_user(email="x@example.com")  # the contact names no language
    assert "Заказы" in text_of(client.get(url_of(nobody), HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9"))
    assert "Order updates" in text_of(client.get(url_of(nobody), HTTP_ACCEPT_LANGUAGE="en-GB"))
    settings.LANGUAGE_CODE = "ru"
    assert "Заказы" in text_of(client.get(url_of(nobody), HTTP_ACCEPT_LANGUAGE="de"))

    # The switch on the page wins over all of them.
    english = text_of(client.get(url_of(ivan, lang="en")))
    assert "Order updates" in english and '<html lang="en">' in english
    assert '<a href="?lang=ru" lang="ru" hreflang="ru">Русский</a>' in english


# --- saving -------------------------------------------------------------------------------------


def test_saving_turns_channels_on_and_off_and_states_of_returns_the_choice(topics, ann):
    client = csrf_client()
    url = url_of(ann)

    response = save(client, url, ["orders:telegram", "orders:email", "promotions:email"])

    assert response.status_code == 302
    assert response["Location"] == url + "?lang=en&saved=1"
    assert channel_states(ann) == {
        "orders": {"telegram": True, "email": True, "sms": False},
        "promotions": {"telegram": False, "email": True, "sms": False},
    }
    # Only what she changed is a choice of hers; the rest follow the category's defaults.
    chosen = set(Preference.objects.filter(user=ann).values_list("category__key", "channel"))
    assert chosen == {("orders", "sms"), ("promotions", "email")}
    shown = client.get(response["Location"])
    assert 'role="status">Saved.</p>' in text_of(shown)
    assert boxes(text_of(shown))["promotions:email"] is True
    assert boxes(text_of(shown))["orders:sms"] is False


def test_saving_in_russian_says_so_in_russian(topics, make_user):
    ivan = make_user(email="ivan@example.com", language="ru")
    client = csrf_client()

    response = save(client, url_of(ivan), [])

    assert response["Location"].endswith("?lang=ru&saved=1")
    assert "Сохранено." in text_of(client.get(response["Location"]))
    assert channel_states(ivan)["orders"] == {"telegram": False, "email": False, "sms": False}


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(topics, ann):
    client = csrf_client()
    url = url_of(ann)
    client.get(url)  # the CSRF cookie is set, but the form's token is left out

    refused = client.post(url, {"shown": ["orders"], "on": []})

    assert refused.status_code == 403
    assert not Preference.objects.exists()
    # From another site: no cookie either.
    assert csrf_client().post(url, {"shown": ["orders"], "on": []}).status_code == 403
    assert not Preference.objects.exists()


def test_a_topic_the_page_did_not_show_is_left_as_it_was(topics, ann):
    """A category added between showing the page and saving it (absent from ``shown``) is not
    turned off by the boxes the user never saw; a key made up in the form is ignored."""
    response = save(
        csrf_client(), url_of(ann), ["orders:email"], shown=("orders", "security", "nope")
    )

    assert response.status_code == 302
    assert channel_states(ann)["promotions"] == {"telegram": False, "email": False, "sms": False}
    assert not Preference.objects.filter(category=topics.promotions).exists()
    assert not Preference.objects.filter(category=topics.security).exists()
    assert channel_states(ann)["orders"] == {"telegram": False, "email": True, "sms": False}


# --- bad links ----------------------------------------------------------------------------------

INTERNALS = ("Traceback", "Signature", "BadLink", "signing", "Django", "SECRET", "File ")


def expired_token(user_id: int, monkeypatch, days: int) -> str:
    then = (timezone.now() - timedelta(days=days)).timestamp()
    with monkeypatch.context() as patch:
        patch.setattr(signing.time, "time", lambda: then)
        return links.page_token(user_id)


def test_an_altered_or_expired_link_gets_a_plain_404_in_the_browsers_language(
    client, topics, ann, monkeypatch, settings
):
    token = links.page_token(ann.pk)
    altered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    other_user = signing.dumps({"u": ann.pk}, salt="another.use", compress=True)
    nobody = links.page_token(ann.pk + 1000)
    expired = expired_token(ann.pk, monkeypatch, days=settings.NOTIFY_PREFERENCE_LINK_DAYS + 1)
    assert client.get(url_of(ann)).status_code == 200  # the good one works

    pages = []
    for bad in (altered, other_user, nobody, expired, "nope", "a" * 300):
        response = client.get(
            reverse("preferences-page", args=[bad]), HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9"
        )
        assert response.status_code == 404, bad
        html = text_of(response)
        assert "Эта ссылка не работает" in html
        assert bad not in html and not any(word in html for word in INTERNALS)
        assert not Preference.objects.exists()
        pages.append(html)
    assert len(set(pages)) == 1  # the same page, whatever was wrong with the link
    english = client.get(reverse("preferences-page", args=[expired]), HTTP_ACCEPT_LANGUAGE="en")
    assert "This link does not work" in text_of(english)
    # An altered link can't be posted to either.
    assert csrf_client().post(reverse("preferences-page", args=[altered])).status_code == 403


def test_a_link_within_its_lifetime_still_works(client, topics, ann, monkeypatch, settings):
    token = expired_token(ann.pk, monkeypatch, days=settings.NOTIFY_PREFERENCE_LINK_DAYS - 1)
    assert client.get(reverse("preferences-page", args=[token])).status_code == 200
    settings.NOTIFY_PREFERENCE_LINK_DAYS = 30
    assert client.get(reverse("preferences-page", args=[token])).status_code == 404


# --- throttling ---------------------------------------------------------------------------------


def test_each_address_gets_a_few_tries_then_429_so_tokens_cant_be_guessed(
    client, topics, ann, settings
):
    settings.NOTIFY_API_ANON_RATE = (3, 3600.0)
    address = (
        f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"  # the schedule outlives a test
    )
    here = {"REMOTE_ADDR": address, "HTTP_ACCEPT_LANGUAGE": "ru"}
    guesses = [reverse("preferences-page", args=[f"guess{n}"]) for n in range(2)]
    assert [client.get(url, **here).status_code for url in guesses] == [404, 404]
    assert client.get(url_of(ann), **here).status_code == 200

    refused = client.get(url_of(ann), **here)

    assert refused.status_code == 429
    assert 1000 < int(refused["Retry-After"]) <= 1200  # one try back every 20 minutes
    assert "Слишком много запросов" in text_of(refused)
    other = {"REMOTE_ADDR": f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"}
    assert client.get(url_of(ann), **other).status_code == 200


def test_a_user_without_a_contact_row_still_gets_their_page(client, topics, ann):
    UserContact.objects.filter(user=ann).delete()
    response = client.get(url_of(ann))
    assert response.status_code == 200
    assert "Email:" not in text_of(response)  # the account's address is hers


def test_the_token_never_reaches_the_logs(client, topics, ann):
    """A page token is a credential for months: Django's "Not Found" warning, as the
    service's log handler writes it, and gunicorn's access log show the path masked."""
    token = links.page_token(ann.pk)
    altered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    (console,) = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    written = io.StringIO()
    stream = console.setStream(written)
    try:
        assert client.get(reverse("preferences-page", args=[altered])).status_code == 404
    finally:
        console.setStream(stream)

    assert "Not Found: /preferences/***/" in written.getvalue()
    assert token[:-3] not in written.getvalue()
    assert mask(f"GET /preferences/{token}/?lang=ru HTTP/1.1") == (
        "GET /preferences/***/?lang=ru HTTP/1.1"
    )
