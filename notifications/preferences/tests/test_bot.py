"""The bot's ``/settings`` end to end, in both modes (the fake Bot API posts updates to the
live webhook, or the real ``telegram_poll`` command long-polls them): the topics with a toggle
per channel, a press applied once and its keyboard redrawn, a replayed press a no-op with no
second answer, a press from another chat or with forged data changing nothing."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.utils import translation

from notifications import telegram_bot
from notifications.models import Channel, TelegramUpdate, UserContact
from notifications.preferences import bot as preference_bot
from notifications.preferences import links, reach
from notifications.preferences.models import Category, Preference
from notifications.preferences.services import states_of

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "webhook-secret_0123456789"
CHAT = 555000111
OTHER_CHAT = 555000777


@pytest.fixture
def bot(settings, telegram):
    settings.TELEGRAM_BOT_TOKEN = telegram.token
    settings.TELEGRAM_API_URL = telegram.url
    settings.TELEGRAM_BOT_USERNAME = "fake_bot"
    settings.TELEGRAM_WEBHOOK_SECRET = SECRET
    settings.NOTIFY_HTTP_TIMEOUT = 2.0
    settings.PUBLIC_BASE_URL = "https://notify.example.com"
    return settings


@pytest.fixture(params=["webhook", "poll"])
def updates(request, bot, telegram):
    """Hands the updates pushed to the fake Bot API to the bot: through the webhook (set by
    the real command, pointing at the live server), or by the real poller."""
    if request.param == "webhook":
        live_server = request.getfixturevalue("live_server")
        bot.NOTIFY_PUBLIC_URL = live_server.url
        call_command("telegram_webhook", "set", stdout=io.StringIO())
        assert "callback_query" in telegram.allowed_updates

        def deliver() -> None:
            assert set(telegram.post_pending_to_webhook()) <= {200}

    else:

        def deliver() -> None:
            call_command("telegram_poll", iterations=2, timeout=0, stdout=io.StringIO())
            getupdates = [r for r in telegram.requests if r["method"] == "getUpdates"]
            assert "callback_query" in getupdates[-1]["allowed_updates"]

    return deliver


@pytest.fixture
def ann(make_user):
    return make_user(email="ann@example.com", telegram_chat_id=str(CHAT))


def settings_message(telegram, updates, chat: int = CHAT, language_code: str = "en") -> dict:
    """Send /settings from ``chat``; the message the bot answered with."""
    telegram.push_update(telegram.message_update(chat, "/settings", language_code=language_code))
    updates()
    return [m for m in telegram.messages if m["chat_id"] == str(chat)][-1]


def buttons(message: dict) -> list[list[str]]:
    return [[b["text"] for b in row] for row in message["reply_markup"]["inline_keyboard"]]


def data_of(message: dict, label: str, row: int) -> str:
    keyboard = message["reply_markup"]["inline_keyboard"]
    return next(b["callback_data"] for b in keyboard[row] if b["text"] == label)


def press(telegram, message: dict, data: str, **kwargs) -> dict:
    """Press a button with ``data`` on ``message``; the update, as queued."""
    chat = int(message["chat_id"])
    update = telegram.callback_query_update(chat, data, message_id=message["message_id"], **kwargs)
    update["update_id"] = telegram.push_update(update)
    return update


def channels(user) -> dict[str, dict[str, bool]]:
    return {state.category.key: state.channels for state in states_of(user)}


def answers(telegram) -> list[str]:
    return [a["text"] for a in telegram.callback_answers]


# --- /settings ----------------------------------------------------------------------------------


def test_settings_lists_the_topics_with_a_toggle_per_channel_and_the_page_link(
    bot, telegram, updates, topics, ann
):
    message = settings_message(telegram, updates)

    text = message["text"]
    assert text.startswith("Your notifications. Tap a channel to turn it on (✅) or off (❌)")
    assert "• Order updates — Shipping and delivery of your orders." in text
    assert "• Promotions — Offers and discounts, at most once a week." in text
    assert "Always sent: Security." in text
    assert "SMS: we have no number for you, so nothing comes by SMS." in text
    link = re.search(r"All settings on the web: (\S+)", text).group(1)
    assert link.startswith("https://notify.example.com/preferences/")
    assert links.user_id_of(link.split("/")[-2]) == ann.pk
    assert buttons(message) == [
        ["Order updates"],
        ["✅ Telegram", "✅ Email", "✅ SMS"],
        ["Promotions"],
        ["❌ Telegram", "❌ Email", "❌ SMS"],  # opt-in: off until turned on
    ]
    orders, promotions = topics.orders.pk, topics.promotions.pk
    assert data_of(message, "✅ Email", 1) == f"pref:{orders}:email:0"
    assert data_of(message, "❌ SMS", 3) == f"pref:{promotions}:sms:1"
    every = [b["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for b in row]
    assert all(len(data.encode()) <= 64 for data in every)  # Telegram's limit


def test_settings_speaks_russian_and_needs_a_linked_private_chat(bot, telegram, topics, ann):
    russian = telegram_bot.process_update(
        {"update_id": 1, **telegram.message_update(CHAT, "/settings", language_code="ru")}
    )
    assert russian.text.startswith("Ваши уведомления.")
    assert "• Заказы — Отправка и доставка ваших заказов." in russian.text
    assert "Приходят всегда: Безопасность." in russian.text
    assert [b["text"] for b in russian.markup["inline_keyboard"][1]] == [
        "✅ Telegram",
        "✅ Эл. почта",
        "✅ SMS",
    ]

    stranger = telegram_bot.process_update(
        {"update_id": 2, **telegram.message_update(OTHER_CHAT, "/settings")}
    )
    assert stranger.text == preference_bot.text("not_linked", "en")
    assert stranger.markup is None
    group = telegram.message_update(CHAT, "/settings@fake_bot")
    group["message"]["chat"]["type"] = "group"
    reply = telegram_bot.process_update({"update_id": 3, **group})
    assert reply.text == preference_bot.text("private_only", "en") and reply.markup is None


def test_settings_without_a_public_url_has_no_link_and_without_topics_says_so(bot, telegram, ann):
    bot.PUBLIC_BASE_URL = bot.NOTIFY_PUBLIC_URL = ""
    Category.objects.update(required=True)  # only the default, made required: no choice left
    reply = telegram_bot.process_update(
        {"update_id": 1, **telegram.message_update(CHAT, "/settings")}
    )
    assert reply.text.startswith(preference_bot.text("nothing", "en"))
    assert "http" not in reply.text and reply.markup is None


def test_many_long_topics_still_fit_one_message_and_one_keyboard(bot, telegram, ann):
    """Telegram refuses a message over 4096 characters and a keyboard over 100 buttons: 30
    topics with long descriptions come as names only, the first 24 with buttons."""
    Category.objects.bulk_create(
        Category(key=f"topic-{n:02}", name_en=f"Topic {n:02}", description_en="Long. " * 50)
        for n in range(30)
    )
    Category.objects.filter(key="general").delete()
    telegram_bot.process_update({"update_id": 1, **telegram.message_update(CHAT, "/settings")})

    (message,) = [m for m in telegram.messages if m["chat_id"] == str(CHAT)]
    assert "• Topic 00\n• Topic 01\n" in message["text"] and "Long." not in message["text"]
    assert "24 of 30 topics are here; the web page has all of them." in message["text"]
    assert "https://notify.example.com/preferences/" in message["text"]
    rows = message["reply_markup"]["inline_keyboard"]
    assert len(rows) == 48 and sum(len(row) for row in rows) == 96
    assert rows[-2][0]["text"] == "Topic 23"


# --- pressing -----------------------------------------------------------------------------------


def test_a_press_turns_the_channel_off_once_and_redraws_the_keyboard(
    bot, telegram, updates, topics, ann
):
    message = settings_message(telegram, updates)
    off = data_of(message, "✅ Email", 1)
    update = press(telegram, message, off)

    updates()

    assert channels(ann)["orders"] == {"telegram": True, "email": False, "sms": True}
    assert answers(telegram) == ["Email off: Order updates"]
    assert buttons(message)[1] == ["✅ Telegram", "❌ Email", "✅ SMS"]  # redrawn in place
    assert data_of(message, "❌ Email", 1) == f"pref:{topics.orders.pk}:email:1"

    # Telegram sends the same update again: nothing changes, and no second answer.
    telegram_bot.process_update(update)
    # The user taps the old button again before the keyboard is redrawn: a new update
    # asking for the same state changes nothing more.
    press(telegram, message, off)
    updates()

    assert channels(ann)["orders"] == {"telegram": True, "email": False, "sms": True}
    assert answers(telegram) == ["Email off: Order updates", "Email off: Order updates"]
    asked = [r for r in telegram.requests if r["method"] == "answerCallbackQuery"]
    assert len(asked) == 2  # the replayed update was not answered again (nor refused)
    assert list(Preference.objects.values_list("channel", "enabled")) == [("email", False)]
    edits = [r for r in telegram.requests if r["method"] == "editMessageReplyMarkup"]
    assert len(edits) == 1  # the keyboard already showed it: not redrawn for nothing
    assert TelegramUpdate.objects.filter(kind="callback_query").count() == 2

    # And back on.
    press(telegram, message, data_of(message, "❌ Email", 1))
    updates()
    assert channels(ann)["orders"]["email"] is True
    assert answers(telegram)[-1] == "Email on: Order updates"


def test_a_press_of_a_topics_name_shows_its_description_and_changes_nothing(
    bot, telegram, topics, ann
):
    message = preference_bot.settings_message(str(CHAT), "ru", private=True)
    pressed = telegram_bot.process_update(
        {
            "update_id": 1,
            **telegram.callback_query_update(
                CHAT, f"pref:{topics.promotions.pk}", language_code="ru"
            ),
        }
    )
    assert pressed.notice == "Предложения и скидки, не чаще раза в неделю."
    assert message.markup["inline_keyboard"][2][0]["text"] == "Акции"
    assert not Preference.objects.exists()


def test_a_press_from_another_chat_never_changes_this_users_preferences(
    bot, telegram, updates, topics, ann, make_user
):
    message = settings_message(telegram, updates)
    off = data_of(message, "✅ Email", 1)
    # The same data from a chat nobody linked, and from someone else than the chat's owner.
    telegram.push_update(telegram.callback_query_update(OTHER_CHAT, off))
    press(telegram, message, off, from_id=OTHER_CHAT)
    updates()

    assert channels(ann)["orders"]["email"] is True
    assert answers(telegram) == [preference_bot.text("press_not_linked", "en")] * 2
    assert not Preference.objects.exists()

    # A chat linked to Bob: the press is Bob's own choice, never Ann's.
    bob = make_user(email="bob@example.com", telegram_chat_id=str(OTHER_CHAT))
    telegram.push_update(telegram.callback_query_update(OTHER_CHAT, off))
    updates()
    assert channels(bob)["orders"]["email"] is False
    assert channels(ann)["orders"]["email"] is True


@pytest.mark.parametrize(
    "data",
    [
        "pref:999999:email:0",  # no such category
        "pref:{security}:email:0",  # required: not a choice
        "pref:{orders}:fax:0",
        "pref:{orders}:email:2",
        "pref:{orders}:email:0:1",
        "pref:0{orders}:email:0",
        "pref:-{orders}:email:0",
        "pref:{orders}:email",
        "pref:",
        "x" * 64,
        "",
    ],
)
def test_forged_or_stale_data_changes_nothing_and_gets_a_short_answer(
    bot, telegram, updates, topics, ann, data
):
    message = settings_message(telegram, updates)
    press(telegram, message, data.format(orders=topics.orders.pk, security=topics.security.pk))

    updates()

    assert answers(telegram) == [preference_bot.text("stale", "en")]
    assert not Preference.objects.exists()
    assert [r for r in telegram.requests if r["method"] == "editMessageReplyMarkup"] == []


def test_a_press_without_an_id_is_recorded_and_ignored(bot, telegram, topics, ann):
    update = telegram.callback_query_update(CHAT, f"pref:{topics.orders.pk}:email:0")
    del update["callback_query"]["id"]
    assert telegram_bot.process_update({"update_id": 1, **update}) is None
    assert TelegramUpdate.objects.filter(update_id=1).exists()
    assert not Preference.objects.exists()


# --- texts --------------------------------------------------------------------------------------


def test_every_settings_text_has_its_russian_whatever_the_operators_language():
    values = {
        "names": "x",
        "url": "https://x",
        "shown": 1,
        "total": 2,
        "channel": "c",
        "topic": "t",
    }
    for key in preference_bot.TEXTS:
        with translation.override("ru"):
            english = preference_bot.text(key, "en", **values)
        russian = preference_bot.text(key, "ru-RU", **values)
        assert english != russian and re.search("[а-яё]", russian), key
        assert not re.search("[а-яё]", english), key
    for text in [*reach.NO_ADDRESS.values(), reach.BLOCKED, *reach.OPTED_OUT.values()]:
        with translation.override("ru"):
            assert re.search("[а-яё]", str(text)), text


def test_the_notes_name_each_channel_that_cant_reach_the_user(make_user):
    contact = UserContact.objects.get(
        user=make_user(telegram_chat_id="1", telegram_blocked=True, phone="+79161234567")
    )
    assert list(reach.unreachable(contact)) == [Channel.TELEGRAM, Channel.EMAIL]
    UserContact.objects.filter(pk=contact.pk).update(
        telegram_blocked=False, telegram_opt_out=True, sms_opt_out=True
    )
    contact.refresh_from_db()
    assert reach.unreachable(contact) == {
        "telegram": reach.OPTED_OUT["telegram"],
        "email": reach.NO_ADDRESS["email"],
        "sms": reach.OPTED_OUT["sms"],
    }
