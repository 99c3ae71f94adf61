"""Telegram linking end to end, in both modes: the fake Bot API posts updates to the live
webhook, or the real ``telegram_poll`` command long-polls its getUpdates. A wrong secret
changes nothing, a replayed update is a no-op, /stop and blocking take effect, an expired,
used or unknown token links nothing."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone, translation

from notifications import telegram_bot
from notifications.delivery import deliver_now
from notifications.invite_tokens import MASK
from notifications.management.commands.runservice import Command as RunService
from notifications.models import (
    DeliveryAttempt,
    Notification,
    TelegramLink,
    TelegramPollOffset,
    TelegramUpdate,
    UserContact,
)
from notifications.services import notification_create, telegram_invites_send
from notifications.tests.fakes.server import post

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "webhook-secret_0123456789"
CHAT = 555000111


@pytest.fixture
def bot(settings, telegram, smtp):
    settings.TELEGRAM_BOT_TOKEN = telegram.token
    settings.TELEGRAM_API_URL = telegram.url
    settings.TELEGRAM_BOT_USERNAME = ""
    settings.TELEGRAM_WEBHOOK_SECRET = SECRET
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp.port
    settings.NOTIFY_HTTP_TIMEOUT = 2.0
    telegram_bot.cache.clear()
    return settings


@pytest.fixture
def webhook(bot, live_server, telegram):
    """The webhook set through the real command, pointing at the live server."""
    bot.NOTIFY_PUBLIC_URL = live_server.url
    out = io.StringIO()
    call_command("telegram_webhook", "set", stdout=out, stderr=io.StringIO())
    assert f"{live_server.url}/telegram/webhook/" in out.getvalue()
    assert telegram.webhook_url == f"{live_server.url}/telegram/webhook/"
    assert telegram.webhook_secret == SECRET
    assert telegram.allowed_updates == ["message", "my_chat_member", "callback_query"]
    return telegram


@pytest.fixture
def contact(make_user):
    return UserContact.objects.get(user=make_user(email="ann@example.com"))


def poll(iterations: int = 1) -> str:
    out = io.StringIO()
    call_command("telegram_poll", iterations=iterations, timeout=0, stdout=out)
    return out.getvalue()


def start(telegram, token: str, chat: int = CHAT, language_code: str = "en") -> dict:
    update = telegram.message_update(chat, f"/start {token}", language_code=language_code)
    update["update_id"] = telegram.push_update(update)
    return update


def refreshed(contact: UserContact) -> UserContact:
    contact.refresh_from_db()
    return contact


# --- linking in both modes ----------------------------------------------------------------------


def test_a_contact_gets_linked_through_the_webhook(webhook, contact):
    invite = telegram_bot.page_link(contact)
    assert invite.url.startswith("https://t.me/fake_bot?start=")
    assert len(invite.token) <= 64 and telegram_bot.TOKEN_PATTERN.fullmatch(invite.token)
    UserContact.objects.filter(pk=contact.pk).update(telegram_opt_out=True)
    start(webhook, invite.token)

    assert webhook.post_pending_to_webhook() == [200]

    contact = refreshed(contact)
    assert contact.telegram_chat_id == str(CHAT)
    assert contact.telegram_opt_out is False
    assert webhook.delivered_to(CHAT) == [telegram_bot.text("linked", "en")]
    assert webhook.pending_updates() == []  # answered 200: Telegram won't send it again
    # A notification now goes to Telegram first.
    notification = notification_create(user=contact.user, message="Hello there")
    deliver_now([notification.pk])
    assert webhook.delivered_to(CHAT)[-1] == "Hello there"


def test_a_contact_gets_linked_by_polling(bot, telegram, contact):
    invite = telegram_bot.page_link(contact)
    start(telegram, invite.token, language_code="ru-RU")

    assert "1 update(s) handled" in poll()

    assert refreshed(contact).telegram_chat_id == str(CHAT)
    assert telegram.delivered_to(CHAT) == [
        "Готово: этот чат подключён, уведомления будут приходить сюда. "
        "Чтобы отключить их, отправьте /stop."
    ]
    offset = TelegramPollOffset.objects.get(bot_id=123456)
    assert offset.next_offset == TelegramUpdate.objects.get().update_id + 1
    getupdates = [r for r in telegram.requests if r["method"] == "getUpdates"]
    assert getupdates[-1]["allowed_updates"] == ["message", "my_chat_member", "callback_query"]


def test_polling_keeps_its_offset_across_restarts(bot, telegram, contact):
    first = telegram.push_update(telegram.message_update(CHAT, "hello"))
    poll()
    second = telegram.push_update(telegram.message_update(CHAT, "/stop"))
    poll()  # a "restarted" poller: offset from the database
    handled = list(TelegramUpdate.objects.order_by("update_id").values_list("update_id", flat=True))
    assert handled == [first, second]
    assert len(telegram.delivered_to(CHAT)) == 2  # each answered once
    offsets = [r.get("offset") for r in telegram.requests if r["method"] == "getUpdates"]
    assert offsets == [None, first + 1]


def test_an_update_replayed_after_the_webhook_handled_it_is_a_no_op(bot, telegram, contact):
    invite = telegram_bot.page_link(contact)
    update = start(telegram, invite.token)
    telegram_bot.process_update(update)  # as if the webhook had it, and Telegram sends it again
    assert refreshed(contact).telegram_chat_id == str(CHAT)

    poll(iterations=2)  # the second getUpdates confirms the first's updates

    assert telegram.delivered_to(CHAT) == [telegram_bot.text("linked", "en")]  # one reply
    assert telegram.pending_updates() == []
    assert TelegramUpdate.objects.count() == 1


def test_polling_while_a_webhook_is_set_says_how_to_fix_it(bot, telegram):
    telegram.set_webhook({"url": "https://notify.example.com/telegram/webhook/"})
    with pytest.raises(CommandError, match="telegram_webhook delete"):
        poll()
    call_command("telegram_webhook", "delete", stdout=io.StringIO())
    assert telegram.webhook_url == ""
    poll()  # polling works again


def test_telegram_webhook_info_reports_what_telegram_has(webhook):
    out = io.StringIO()
    call_command("telegram_webhook", "info", stdout=out)
    assert f"url: {webhook.webhook_url}" in out.getvalue()
    assert "pending updates: 0" in out.getvalue()


def test_telegram_webhook_set_needs_a_secret_and_a_url(bot):
    bot.NOTIFY_PUBLIC_URL = ""
    with pytest.raises(CommandError, match="NOTIFY_PUBLIC_URL"):
        call_command("telegram_webhook", "set", stdout=io.StringIO())
    bot.TELEGRAM_WEBHOOK_SECRET = ""
    with pytest.raises(CommandError, match="TELEGRAM_WEBHOOK_SECRET"):
        call_command("telegram_webhook", "set", stdout=io.StringIO())


# --- the webhook's guard ------------------------------------------------------------------------


def test_a_wrong_or_missing_secret_changes_nothing(webhook, contact):
    invite = telegram_bot.page_link(contact)
    update = start(webhook, invite.token)

    assert webhook.post_update_to_webhook(update, secret="wrong-secret-0123456789") == 403
    assert webhook.post_update_to_webhook(update, secret=SECRET + "x") == 403
    assert webhook.post_update_to_webhook(update, secret=None) == 403

    assert refreshed(contact).telegram_chat_id == ""
    assert TelegramUpdate.objects.count() == 0
    assert webhook.delivered_to(CHAT) == []
    assert TelegramLink.objects.get().used_at is None


def test_replayed_webhook_updates_are_no_ops(webhook, contact, make_user):
    invite = telegram_bot.page_link(contact)
    update = start(webhook, invite.token)
    assert webhook.post_update_to_webhook(update) == 200
    # The chat then links to someone else with a valid link; the old update comes again.
    other = UserContact.objects.get(user=make_user(email="bob@example.com"))
    assert (
        webhook.post_update_to_webhook(start(webhook, telegram_bot.page_link(other).token)) == 200
    )

    assert webhook.post_update_to_webhook(update) == 200

    assert refreshed(contact).telegram_chat_id == ""
    assert refreshed(other).telegram_chat_id == str(CHAT)
    assert len(webhook.delivered_to(CHAT)) == 2


def test_malformed_webhook_bodies_get_400_and_ignored_updates_200(webhook, live_server):
    url = f"{live_server.url}/telegram/webhook/"
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
    assert post(url, b"{not json", headers) == 400
    assert post(url, b'{"message": {}}', headers) == 400  # no update_id
    assert post(url, b'{"update_id": 7, "edited_message": {"text": "x"}}', headers) == 200
    assert post(url, b'{"update_id": 8, "message": {"no": "chat"}}', headers) == 200
    assert TelegramUpdate.objects.count() == 2


@pytest.mark.parametrize(
    "chat_id", [b"Infinity", b"-Infinity", b"1e400", b"1.5", b"true", str(2**70).encode()]
)
def test_an_update_whose_chat_id_is_not_an_integer_is_recorded_and_ignored(
    webhook, live_server, contact, chat_id
):
    url = f"{live_server.url}/telegram/webhook/"
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
    for n, kind in enumerate(("message", "my_chat_member")):
        body = (
            b'{"update_id": %d, "%s": {"chat": {"id": %s, "type": "private"}, "text": "/stop",'
            b' "new_chat_member": {"status": "kicked"}}}' % (40 + n, kind.encode(), chat_id)
        )
        assert post(url, body, headers) == 200
    assert sorted(TelegramUpdate.objects.values_list("update_id", flat=True)) == [40, 41]
    assert UserContact.objects.filter(telegram_opt_out=True).count() == 0
    assert webhook.delivered_to(CHAT) == []


def test_an_update_id_too_large_to_record_is_ignored_not_an_error(webhook, live_server):
    url = f"{live_server.url}/telegram/webhook/"
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
    body = b'{"update_id": %d, "message": {"chat": {"id": 5}, "text": "hi"}}' % 2**70
    assert post(url, body, headers) == 200  # answered: Telegram would only send it again
    assert not TelegramUpdate.objects.exists()


def test_the_poller_survives_updates_it_cannot_record(bot, telegram, contact):
    """In poll mode an ``OverflowError`` used to kill the poller: the next updates were never
    read."""
    telegram.push_raw_update({"update_id": 2**70, "message": {"chat": {"id": CHAT}}})
    bad = telegram.message_update(CHAT, "/stop")
    bad["message"]["chat"]["id"] = float("inf")
    telegram.push_update(bad)
    good = telegram.push_update(telegram.message_update(CHAT + 1, "hello"))
    poll()
    assert TelegramUpdate.objects.filter(update_id=good).exists()
    assert telegram.delivered_to(CHAT + 1) == [telegram_bot.text("how_to_link", "en")]
    assert telegram.delivered_to(CHAT) == []


# --- conversations ------------------------------------------------------------------------------


def test_stop_opts_out_and_later_notifications_skip_telegram(bot, telegram, contact):
    telegram_bot.process_update({"update_id": 1, **telegram.message_update(CHAT, "hi")})
    UserContact.objects.filter(pk=contact.pk).update(telegram_chat_id=str(CHAT))
    reply = telegram_bot.process_update(
        {"update_id": 2, **telegram.message_update(CHAT, "/stop", language_code="ru")}
    )
    assert reply.text == (
        "Уведомления больше не будут приходить сюда. Чтобы снова получать их, отправьте /start."
    )
    assert refreshed(contact).telegram_opt_out is True

    notification = notification_create(user=contact.user, message="Via email, please")
    deliver_now([notification.pk])
    notification.refresh_from_db()
    assert notification.channel == "email"
    skipped = notification.attempts.get(channel="telegram")
    assert (skipped.outcome, skipped.error) == ("skipped", "opted out")

    # /start alone in the linked chat resumes.
    reply = telegram_bot.process_update({"update_id": 3, **telegram.message_update(CHAT, "/start")})
    assert reply.text == telegram_bot.text("resumed", "en")
    assert refreshed(contact).telegram_opt_out is False


def test_kicked_marks_the_contact_and_telegram_is_skipped_without_a_call(bot, telegram, contact):
    UserContact.objects.filter(pk=contact.pk).update(telegram_chat_id=str(CHAT))
    telegram_bot.process_update({"update_id": 1, **telegram.my_chat_member_update(CHAT, "kicked")})
    assert refreshed(contact).telegram_blocked is True

    notification = notification_create(user=contact.user, message="Blocked? Email then")
    deliver_now([notification.pk])
    notification.refresh_from_db()
    assert notification.channel == "email"
    assert notification.attempts.get(channel="telegram").error == "the user blocked the bot"
    assert [r for r in telegram.requests if r["method"] == "sendMessage"] == []

    telegram_bot.process_update({"update_id": 2, **telegram.my_chat_member_update(CHAT, "member")})
    assert refreshed(contact).telegram_blocked is False


def test_a_403_blocked_by_the_user_at_send_time_sets_the_same_mark(bot, telegram, contact):
    UserContact.objects.filter(pk=contact.pk).update(telegram_chat_id=str(CHAT))
    telegram.per_chat[str(CHAT)] = "403"
    first = notification_create(user=contact.user, message="One")
    deliver_now([first.pk])
    assert refreshed(contact).telegram_blocked is True
    second = notification_create(user=contact.user, message="Two")
    deliver_now([second.pk])
    sends = [r for r in telegram.requests if r["method"] == "sendMessage"]
    assert len(sends) == 1  # the second never called Telegram
    assert second.attempts.get(channel="telegram").outcome == DeliveryAttempt.Outcome.SKIPPED


def test_an_expired_token_links_nothing(bot, telegram, contact):
    invite = telegram_bot.page_link(contact)
    TelegramLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    reply = telegram_bot.process_update(start(telegram, invite.token))
    assert reply.text == telegram_bot.text("expired", "en")
    assert refreshed(contact).telegram_chat_id == ""
    assert TelegramLink.objects.get().used_at is None


def test_used_and_unknown_tokens_link_nothing(bot, telegram, contact, make_user):
    invite = telegram_bot.page_link(contact)
    telegram_bot.process_update(start(telegram, invite.token))
    again = telegram_bot.process_update(start(telegram, invite.token))
    assert again.text == telegram_bot.text("already_linked", "en")
    stranger = telegram_bot.process_update(start(telegram, invite.token, chat=777))
    assert stranger.text == telegram_bot.text("used", "en")
    for token in ("nope", "x" * 65, "bad token!", telegram_bot.page_link(contact).token[:-1]):
        reply = telegram_bot.process_update(start(telegram, token, chat=777))
        assert reply.text == telegram_bot.text("unknown", "en")
    assert refreshed(contact).telegram_chat_id == str(CHAT)
    assert not UserContact.objects.filter(telegram_chat_id="777").exists()


def test_start_alone_explains_and_discloses_no_one(bot, telegram, contact):
    UserContact.objects.filter(pk=contact.pk).update(telegram_chat_id=str(CHAT))
    reply = telegram_bot.process_update(
        {"update_id": 1, **telegram.message_update(999, "/start", language_code="ru")}
    )
    assert reply.text.startswith("Здравствуйте! Этот бот присылает уведомления.")
    assert "ann" not in reply.text and str(CHAT) not in reply.text


def test_a_linked_chat_moves_to_another_contact_only_with_a_valid_token(
    bot, telegram, contact, make_user
):
    UserContact.objects.filter(pk=contact.pk).update(telegram_chat_id=str(CHAT))
    other = UserContact.objects.get(user=make_user(email="bob@example.com"))
    telegram_bot.process_update(start(telegram, "not-a-real-token"))
    assert refreshed(contact).telegram_chat_id == str(CHAT)

    telegram_bot.process_update(start(telegram, telegram_bot.page_link(other).token))

    assert refreshed(contact).telegram_chat_id == ""
    assert refreshed(other).telegram_chat_id == str(CHAT)


def test_a_used_link_revokes_the_contacts_other_links(bot, telegram, contact):
    page = telegram_bot.page_link(contact)
    row, emailed = telegram_bot.make_link(contact, TelegramLink.Kind.INVITE, "fake_bot")
    row.save()
    telegram_bot.process_update(start(telegram, page.token))
    reply = telegram_bot.process_update(start(telegram, emailed.token, chat=777))
    assert reply.text == telegram_bot.text("used", "en")
    assert refreshed(contact).telegram_chat_id == str(CHAT)


# --- links --------------------------------------------------------------------------------------


def test_the_database_keeps_no_live_token(bot, contact):
    invite = telegram_bot.page_link(contact)
    row = TelegramLink.objects.get()
    stored = " ".join(str(value) for value in row.__dict__.values())
    assert invite.token not in stored
    assert row.token_hash == telegram_bot.token_hash(invite.token)


def test_the_page_link_stays_the_same_until_used_or_half_expired(bot, telegram, contact):
    first = telegram_bot.page_link(contact)
    assert telegram_bot.page_link(contact).url == first.url
    assert [r["method"] for r in telegram.requests] == ["getMe"]  # the username is cached
    TelegramLink.objects.update(expires_at=timezone.now() + timedelta(days=3))
    assert telegram_bot.page_link(contact).url != first.url


def test_bot_username_setting_skips_getme(bot, telegram, contact):
    bot.TELEGRAM_BOT_USERNAME = "my_service_bot"
    assert telegram_bot.page_link(contact).url.startswith("https://t.me/my_service_bot?start=")
    assert telegram.requests == []


def test_prune_forgets_old_update_ids_and_dead_links(bot, telegram, contact):
    telegram_bot.process_update({"update_id": 1, **telegram.message_update(CHAT, "hi")})
    telegram_bot.page_link(contact)
    assert telegram_bot.prune() == {"updates": 0, "links": 0}
    later = timezone.now() + timedelta(days=40)
    assert telegram_bot.prune(later) == {"updates": 1, "links": 1}


def test_an_invite_is_stored_masked_and_sent_with_its_live_link(bot, telegram, smtp, contact):
    """The stored message never holds a live token: whoever reads notifications (a read-only
    API key, view-only staff, a copy of the database) can't take over the user's Telegram."""
    result = telegram_invites_send(contacts=UserContact.objects.filter(pk=contact.pk))
    assert result.sent == 1
    invite = Notification.objects.get(user=contact.user)
    assert f"https://t.me/fake_bot?start={MASK}" in invite.message
    link = TelegramLink.objects.get(contact=contact)
    assert invite.telegram_link_id == link.pk
    assert invite.expires_at == link.expires_at  # a dead link is not worth sending

    deliver_now([invite.pk])

    (mail,) = smtp.received
    token = re.search(r"start=([A-Za-z0-9_-]{43})", mail.body).group(1)
    assert telegram_bot.token_hash(token) == link.token_hash  # the live one went out
    invite.refresh_from_db()
    assert invite.status == "sent"
    assert token not in invite.message and MASK in invite.message  # still masked at rest
    assert token not in " ".join(invite.attempts.values_list("error", flat=True))
    start(telegram, token)
    poll()
    assert refreshed(contact).telegram_chat_id == str(CHAT)


def test_make_run_starts_the_poller_only_when_polling(bot):
    bot.TELEGRAM_UPDATES = "poll"
    assert "telegram" in RunService().commands("127.0.0.1")
    bot.TELEGRAM_UPDATES = "webhook"
    assert "telegram" not in RunService().commands("127.0.0.1")
    bot.TELEGRAM_UPDATES = "poll"
    bot.TELEGRAM_BOT_TOKEN = ""
    assert "telegram" not in RunService().commands("127.0.0.1")


def test_every_text_has_its_russian_whatever_the_operators_language():
    for key in telegram_bot.TEXTS:
        with translation.override("ru"):
            english = telegram_bot.text(key, "en", url="https://t.me/b?start=x", date="2030-01-01")
        russian = telegram_bot.text(key, "ru", url="https://t.me/b?start=x", date="2030-01-01")
        assert english != russian and re.search("[а-яё]", russian), key
        assert not re.search("[а-яё]", english), key
    assert telegram_bot.language("ru-RU") == "ru"
    assert telegram_bot.language("uk") == "en"
    assert telegram_bot.language(None) == "en"


def test_a_message_without_a_language_code_is_answered_in_the_contacts_language(
    bot, telegram, contact, settings
):
    UserContact.objects.filter(pk=contact.pk).update(telegram_chat_id=str(CHAT), language="ru")
    update = {"update_id": 1, **telegram.message_update(CHAT, "hello")}
    del update["message"]["from"]["language_code"]
    with translation.override("en"):  # the operator's, or the webhook request's, is not it
        reply = telegram_bot.process_update(update)
    assert reply.text.startswith("Этот чат уже подключён")
    # A chat nobody linked: the service's language (DJANGO_LANGUAGE_CODE).
    settings.LANGUAGE_CODE = "ru"
    stranger = {"update_id": 2, **telegram.message_update(777, "hello")}
    del stranger["message"]["from"]["language_code"]
    assert telegram_bot.process_update(stranger).text.startswith("Здравствуйте!")
