"""A user's contact through the API: reading it shows no live Telegram link and writes
nothing; a live link comes only from ``POST …/contact/invite`` with a read-and-write key, and
it links the chat that opens it; an update writes only the fields it was given."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission

from notifications import selectors, telegram_bot
from notifications.models import TelegramLink, UserContact

pytestmark = pytest.mark.django_db

CHAT = 555000111


@pytest.fixture
def bot(settings):
    """Telegram configured; the bot's username set, so nothing asks Telegram for it."""
    settings.TELEGRAM_BOT_TOKEN = "123456:test-token"
    settings.TELEGRAM_BOT_USERNAME = "my_service_bot"
    telegram_bot.cache.clear()
    return settings


def contact_url(user) -> str:
    return f"/api/v1/users/{user.pk}/contact"


def start(token: str, update_id: int = 1) -> telegram_bot.Reply | None:
    """The user opens the link: Telegram sends the bot ``/start <token>`` from their chat."""
    message = {
        "message_id": 1,
        "from": {"id": CHAT, "is_bot": False, "first_name": "Ann", "language_code": "en"},
        "chat": {"id": CHAT, "type": "private", "first_name": "Ann"},
        "date": 1_700_000_000,
        "text": f"/start {token}",
    }
    return telegram_bot.handle_update({"update_id": update_id, "message": message})


def test_reading_a_contact_shows_no_invite_link_and_writes_nothing(bot, make_api_client, make_user):
    user = make_user()
    reader = make_api_client(scope="read", name="reports")
    response = reader.get(contact_url(user))
    assert response.status_code == 200
    assert not [name for name in response.json() if "invite" in name]
    assert "t.me" not in response.content.decode()
    # Nor does an update's answer carry one.
    updated = make_api_client().put(contact_url(user), {"sms_opt_out": True})
    assert updated.status_code == 200
    assert "t.me" not in updated.content.decode()
    assert not TelegramLink.objects.exists()


def test_a_read_only_key_cannot_make_an_invite(bot, make_api_client, make_user):
    user = make_user()
    reader = make_api_client(scope="read", name="reports")
    response = reader.post(f"{contact_url(user)}/invite")
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "The API key 'reports' is read-only; this request needs a read-and-write key."
    )
    assert not TelegramLink.objects.exists()


def test_an_invite_made_with_a_write_key_links_the_chat_that_opens_it(bot, api, make_user):
    user = make_user()
    response = api.post(f"{contact_url(user)}/invite")
    assert response.status_code == 200, response.json()
    invite = response.json()
    assert set(invite) == {"url", "expires_at"}
    assert invite["url"].startswith("https://t.me/my_service_bot?start=")
    # The same link again while it is fresh: a retried POST makes no second one.
    assert api.post(f"{contact_url(user)}/invite").json() == invite
    assert TelegramLink.objects.count() == 1

    token = parse_qs(urlsplit(invite["url"]).query)["start"][0]
    reply = start(token)

    assert reply is not None and reply.text == telegram_bot.text("linked", "en")
    assert UserContact.objects.get(user=user).telegram_chat_id == str(CHAT)
    assert api.get(contact_url(user)).json()["telegram_chat_id"] == str(CHAT)


def test_staff_need_the_change_permission_for_an_invite(bot, client, django_user_model, make_user):
    user = make_user()
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_usercontact"))
    client.force_login(clerk)
    url = f"{contact_url(user)}/invite"
    assert client.get(contact_url(user)).status_code == 200
    assert client.post(url).status_code == 403
    clerk.user_permissions.add(Permission.objects.get(codename="change_usercontact"))
    assert client.post(url).json()["url"].startswith("https://t.me/my_service_bot?start=")


def test_an_invite_without_telegram_gets_409_and_no_user_404(settings, api, make_user):
    user = make_user()
    settings.TELEGRAM_BOT_TOKEN = ""
    response = api.post(f"{contact_url(user)}/invite")
    assert response.status_code == 409
    assert response.json()["code"] == "telegram_not_configured"
    assert "TELEGRAM_BOT_TOKEN" in response.json()["detail"]

    # Configured, but the bot's username unknown and Telegram unreachable.
    settings.TELEGRAM_BOT_TOKEN = "123456:test-token"
    settings.TELEGRAM_BOT_USERNAME = ""
    settings.TELEGRAM_API_URL = "http://127.0.0.1:9"
    settings.NOTIFY_HTTP_TIMEOUT = 1.0
    telegram_bot.cache.clear()
    response = api.post(f"{contact_url(user)}/invite")
    assert response.status_code == 409
    assert response.json()["code"] == "telegram_unavailable"
    assert "TELEGRAM_BOT_USERNAME" in response.json()["detail"]

    assert api.post(f"/api/v1/users/{user.pk + 1000}/contact/invite").status_code == 404
    assert not TelegramLink.objects.exists()


def test_a_new_chat_clears_the_bot_blocked_mark(api, make_user):
    user = make_user(telegram_chat_id="111", telegram_blocked=True)
    url = contact_url(user)
    same = api.put(url, {"telegram_chat_id": "111", "sms_opt_out": True})
    assert same.json()["telegram_blocked"] is True  # still the chat that blocked the bot

    response = api.put(url, {"telegram_chat_id": "222"})

    assert response.status_code == 200
    assert (response.json()["telegram_chat_id"], response.json()["telegram_blocked"]) == (
        "222",
        False,
    )
    assert UserContact.objects.get(user=user).telegram_blocked is False


@pytest.mark.parametrize(
    "body",
    [
        {"telegram_blocked": False},
        {"phone": "+79161234567", "effective_email": "x@example.com"},
        {"user": 5},
    ],
)
def test_a_read_only_field_in_a_body_gets_400_and_changes_nothing(api, make_user, body):
    user = make_user(telegram_chat_id="111", telegram_blocked=True)
    before = UserContact.objects.get(user=user)
    response = api.put(contact_url(user), body)
    assert response.status_code == 400
    read_only = sorted(set(body) - {"phone"})
    assert response.json()["fields"] == {
        name: ["This field is read-only; leave it out."] for name in read_only
    }
    after = UserContact.objects.get(user=user)
    assert (after.telegram_blocked, after.phone, after.updated_at) == (
        True,
        "",
        before.updated_at,
    )


def test_a_contact_read_and_put_back_whole_is_refused_naming_what_is_read_only(api, make_user):
    user = make_user()
    whole = api.get(contact_url(user)).json()
    response = api.put(contact_url(user), whole)
    assert response.status_code == 400
    assert sorted(response.json()["fields"]) == [
        "effective_email",
        "telegram_blocked",
        "updated_at",
        "user",
        "username",
    ]


def test_an_update_writes_only_the_fields_given(bot, api, make_user, monkeypatch):
    """The API reads the contact, the bot's /stop lands, the API saves the phone: the
    opt-out survives (an update that saved every field would put it back)."""
    user = make_user(telegram_chat_id=str(CHAT))
    read_before_the_stop = UserContact.objects.get(user=user)
    telegram_bot.handle_update(
        {
            "update_id": 7,
            "message": {
                "message_id": 2,
                "chat": {"id": CHAT, "type": "private"},
                "date": 1_700_000_000,
                "text": "/stop",
            },
        }
    )
    assert UserContact.objects.get(user=user).telegram_opt_out is True
    reads = iter([read_before_the_stop])
    real = selectors.contact_of
    monkeypatch.setattr(selectors, "contact_of", lambda pk: next(reads, None) or real(pk))

    response = api.put(contact_url(user), {"phone": "8 916 123-45-67"})

    assert response.status_code == 200, response.json()
    stored = UserContact.objects.get(user=user)
    assert (stored.phone, stored.telegram_opt_out) == ("+79161234567", True)
    assert response.json()["telegram_opt_out"] is True  # the answer is what is stored
