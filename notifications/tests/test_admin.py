"""The operator's admin: bulk actions, their cost, contacts' validation, the attempts inline."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from notifications import telegram_bot
from notifications.delivery import deliver_now
from notifications.models import (
    ApiKey,
    DeliveryAttempt,
    Notification,
    TelegramLink,
    UserContact,
)
from notifications.senders.sms import segment_count
from notifications.services import telegram_invites_send
from notifications.tests.fixtures import wait_for_status

Status = Notification.Status
CHANGELIST = "admin:notifications_notification_changelist"


@pytest.fixture
def settings_no_autosend(settings):
    settings.NOTIFY_SEND_ON_CREATE = False
    return settings


def make_notifications(user, statuses: list[str]) -> list[Notification]:
    return Notification.objects.bulk_create(
        Notification(user=user, message=f"m{i}", status=status) for i, status in enumerate(statuses)
    )


def run_action(client, action: str, notifications: list[Notification]):
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [n.pk for n in notifications]},
        follow=True,
    )


# The attempts inline's management form, which the change page posts along.
INLINE = {"attempts-TOTAL_FORMS": "0", "attempts-INITIAL_FORMS": "0"}


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.mark.django_db
def test_send_action_queues_pending_and_failed_and_counts_the_rest(
    admin_client, admin_user, settings_no_autosend, django_capture_on_commit_callbacks
):
    selected = make_notifications(
        admin_user,
        [Status.PENDING] * 12 + [Status.FAILED] * 2 + [Status.SENT] * 3 + [Status.SENDING],
    )
    with django_capture_on_commit_callbacks() as callbacks:
        response = run_action(admin_client, "send_selected", selected)

    assert messages_of(response) == ["14 queued, 4 skipped: 1 being sent, 3 already sent"]
    statuses = Notification.objects.values_list("status", flat=True)
    assert sorted(statuses) == sorted([Status.QUEUED] * 14 + [Status.SENT] * 3 + [Status.SENDING])
    assert len(callbacks) == 1  # one doorbell after commit, for the rows it queued


@pytest.mark.django_db
def test_send_action_on_nothing_sendable_warns(admin_client, admin_user, settings_no_autosend):
    selected = make_notifications(admin_user, [Status.SENT, Status.SENT])
    response = run_action(admin_client, "send_selected", selected)
    assert messages_of(response) == ["0 queued, 2 skipped: 2 already sent"]
    assert set(Notification.objects.values_list("status", flat=True)) == {Status.SENT}


@pytest.mark.django_db
def test_resend_action_requeues_sent_ones_from_scratch(
    admin_client, admin_user, settings_no_autosend
):
    (sent,) = make_notifications(admin_user, [Status.SENT])
    Notification.objects.filter(pk=sent.pk).update(
        channel="telegram", sent_at=timezone.now(), rounds=2
    )
    response = run_action(admin_client, "resend_selected", [sent])
    assert messages_of(response) == ["1 queued again"]
    sent.refresh_from_db()
    assert (sent.status, sent.channel, sent.sent_at, sent.rounds) == (
        Status.QUEUED,
        "",
        None,
        0,
    )


@pytest.mark.django_db
def test_cancel_action_stops_all_not_sent_yet(admin_client, admin_user, settings_no_autosend):
    selected = make_notifications(
        admin_user, [Status.PENDING, Status.QUEUED, Status.SENDING, Status.SENT]
    )
    response = run_action(admin_client, "cancel_selected", selected)
    assert messages_of(response) == ["3 cancelled, 1 skipped: 1 already sent"]
    assert sorted(Notification.objects.values_list("status", flat=True)) == sorted(
        [Status.CANCELLED, Status.CANCELLED, Status.CANCELLED, Status.SENT]
    )


@pytest.mark.django_db
def test_send_action_query_count_does_not_grow_with_selection(
    admin_client, admin_user, settings_no_autosend
):
    def queries_for(count: int) -> int:
        Notification.objects.all().delete()
        selected = make_notifications(admin_user, [Status.PENDING] * count)
        with CaptureQueriesContext(connection) as queries:
            response = run_action(admin_client, "send_selected", selected)
        assert messages_of(response) == [f"{count} queued"]
        action_queries = [
            q["sql"] for q in queries.captured_queries if "notifications_notification" in q["sql"]
        ]
        return len(queries), len(action_queries)

    small = queries_for(10)
    large = queries_for(2000)
    assert small == large


@pytest.mark.django_db
def test_operator_without_change_permission_cannot_send(client, settings_no_autosend):
    from django.contrib.auth.models import Permission

    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_notification"))
    client.force_login(viewer)
    selected = make_notifications(viewer, [Status.PENDING])
    client.post(
        reverse(CHANGELIST), {"action": "send_selected", "_selected_action": [selected[0].pk]}
    )
    assert Notification.objects.get().status == Status.PENDING


@pytest.mark.django_db
def test_changelist_shows_status_channel_and_which_channels_are_configured(
    admin_client, admin_user, settings
):
    settings.TELEGRAM_BOT_TOKEN = "123:abc"
    settings.EMAIL_HOST = ""
    Notification.objects.create(user=admin_user, message="hello there")
    response = admin_client.get(reverse(CHANGELIST))
    page = response.content.decode()
    assert response.status_code == 200
    status_line = re.sub(r"\s+", " ", page.split('id="channel-status"')[1].split("</p>")[0])
    assert "telegram</strong> (configured)" in status_line
    assert "email</strong> (<span" in status_line and "not configured" in status_line
    assert "hello there" in page


@pytest.mark.django_db
def test_changelist_filters_and_search(admin_client, admin_user, settings_no_autosend):
    other = get_user_model().objects.create_user("zoe", email="zoe@example.com")
    Notification.objects.create(user=admin_user, message="alpha", status=Status.SENT)
    Notification.objects.create(user=other, message="bravo", status=Status.FAILED)
    failed = admin_client.get(reverse(CHANGELIST), {"status__exact": "failed"}).content.decode()
    assert "bravo" in failed and "alpha" not in failed
    found = admin_client.get(reverse(CHANGELIST), {"q": "zoe"}).content.decode()
    assert "bravo" in found and "alpha" not in found


@pytest.mark.django_db
def test_notification_page_shows_every_attempt(admin_client, admin_user, settings_no_autosend):
    notification = Notification.objects.create(
        user=admin_user, message="x", status=Status.SENT, channel="email"
    )
    now = timezone.now()
    DeliveryAttempt.objects.create(
        notification=notification,
        channel="telegram",
        transport="telegram",
        outcome="permanent",
        error="Telegram 403: Forbidden: bot was blocked by the user",
        started_at=now,
        duration_ms=12,
    )
    DeliveryAttempt.objects.create(
        notification=notification,
        channel="email",
        transport="email",
        outcome="success",
        provider_message_id="<abc@example.com>",
        started_at=now,
        duration_ms=30,
    )
    page = admin_client.get(
        reverse("admin:notifications_notification_change", args=[notification.pk])
    ).content.decode()
    assert "bot was blocked by the user" in page
    assert "&lt;abc@example.com&gt;" in page
    assert "Permanent error" in page and "Success" in page


@pytest.mark.django_db
def test_adding_a_notification_in_the_admin_queues_it(
    admin_client, admin_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            reverse("admin:notifications_notification_add"),
            {"user": admin_user.pk, "subject": "", "message": "From the admin"},
        )
    assert response.status_code == 302
    notification = Notification.objects.get()
    assert notification.status == Status.QUEUED
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_empty_message_is_refused_by_the_form(admin_client, admin_user):
    response = admin_client.post(
        reverse("admin:notifications_notification_add"),
        {"user": admin_user.pk, "subject": "", "message": "   "},
    )
    assert response.status_code == 200
    assert Notification.objects.count() == 0
    assert "This field is required" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"message": "x" * 10_001}, "at most 10,000 are allowed"),
        ({"message": "a\x00b"}, "Null characters are not allowed"),
        ({"subject": "Hi\nthere"}, "The subject must be one line"),
        ({"subject": "s" * 201}, "at most 200 characters"),
        ({"channels": "telegram,fax"}, "Unknown channel"),
    ],
)
def test_bad_input_is_refused_by_the_form_with_a_clear_message(
    admin_client, admin_user, data, text
):
    form = {"user": admin_user.pk, "subject": "", "message": "hello", "channels": ""}
    response = admin_client.post(reverse("admin:notifications_notification_add"), {**form, **data})
    assert response.status_code == 200
    assert text in response.content.decode()
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_saving_a_notification_no_longer_pending_changes_nothing(
    admin_client, admin_user, settings_no_autosend
):
    """The operator opened a pending notification; a worker sent it meanwhile. Save must not
    write the page's stale values over the worker's, and says so."""
    (notification,) = make_notifications(admin_user, [Status.PENDING])
    url = reverse("admin:notifications_notification_change", args=[notification.pk])
    assert admin_client.get(url).status_code == 200  # the form as the operator saw it
    Notification.objects.filter(pk=notification.pk).update(
        status=Status.SENT, channel="telegram", sent_at=timezone.now(), rounds=1
    )
    response = admin_client.post(
        url,
        {"user": admin_user.pk, "subject": "", "message": "edited", "channels": "", **INLINE},
        follow=True,
    )
    assert "Not saved: this notification is no longer pending" in " ".join(messages_of(response))
    notification.refresh_from_db()
    assert (
        notification.status,
        notification.channel,
        notification.message,
        notification.rounds,
    ) == (
        Status.SENT,
        "telegram",
        "m0",
        1,
    )


@pytest.mark.django_db
def test_editing_a_pending_notification_saves_the_edit(
    admin_client, admin_user, settings_no_autosend
):
    (notification,) = make_notifications(admin_user, [Status.PENDING])
    url = reverse("admin:notifications_notification_change", args=[notification.pk])
    admin_client.post(
        url,
        {"user": admin_user.pk, "subject": "S", "message": "edited", "channels": "email", **INLINE},
    )
    notification.refresh_from_db()
    assert (notification.message, notification.subject, notification.channels) == (
        "edited",
        "S",
        ["email"],
    )
    assert notification.status == Status.PENDING


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("phone", "12345", "is not a valid phone number"),
        ("phone", "+7 495 123-45-67", "is not a mobile number"),
        ("phone", "call me", "is not a phone number"),
        ("email", "not-an-email", "Enter a valid email address"),
        ("telegram_chat_id", "chat 42", "Enter a numeric Telegram chat id"),
    ],
)
def test_contact_form_rejects_bad_contacts(admin_client, field, value, message):
    user = get_user_model().objects.create_user("kim")
    contact = user.contact
    data = {"user": user.pk, "telegram_chat_id": "", "email": "", "phone": "", field: value}
    response = admin_client.post(
        reverse("admin:notifications_usercontact_change", args=[contact.pk]), data
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    contact.refresh_from_db()
    assert getattr(contact, field) == ""


@pytest.mark.django_db
def test_contact_form_stores_phone_in_e164(admin_client):
    user = get_user_model().objects.create_user("lev")
    response = admin_client.post(
        reverse("admin:notifications_usercontact_change", args=[user.contact.pk]),
        {
            "user": user.pk,
            "telegram_chat_id": "-1001234567890",
            "email": "",
            "phone": "8 (916) 123-45-67",
        },
    )
    assert response.status_code == 302
    contact = UserContact.objects.get(user=user)
    assert contact.phone == "+79161234567"
    assert contact.telegram_chat_id == "-1001234567890"


@pytest.mark.django_db
def test_every_new_user_gets_a_contact_and_the_user_page_edits_it(admin_client):
    response = admin_client.post(
        reverse("admin:auth_user_add"),
        {"username": "newbie", "password1": "x-Very-long-pw-42", "password2": "x-Very-long-pw-42"},
    )
    assert response.status_code == 302
    user = get_user_model().objects.get(username="newbie")
    assert UserContact.objects.filter(user=user).count() == 1
    page = admin_client.get(reverse("admin:auth_user_change", args=[user.pk])).content.decode()
    assert "Telegram chat id" in page


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_admin_send_action_delivers_through_the_consumer(
    start_consumer, telegram, smtp, client, settings
):
    settings.NOTIFY_SEND_ON_CREATE = False
    admin = get_user_model().objects.create_superuser("boss", password="pw")
    client.force_login(admin)
    user = get_user_model().objects.create_user("pat", email="pat@example.com")
    UserContact.objects.filter(user=user).update(telegram_chat_id="111")
    notifications = make_notifications(user, [Status.PENDING] * 5)
    start_consumer()

    response = run_action(client, "send_selected", notifications)

    assert messages_of(response) == ["5 queued"]
    for notification in notifications:
        wait_for_status(notification, Status.SENT)
    assert sorted(telegram.delivered_to("111")) == [f"m{i}" for i in range(5)]


# --- Telegram linking ---------------------------------------------------------------------------


@pytest.fixture
def telegram_bot_settings(settings, telegram, smtp):
    settings.TELEGRAM_BOT_TOKEN = telegram.token
    settings.TELEGRAM_API_URL = telegram.url
    settings.TELEGRAM_BOT_USERNAME = "notify_demo_bot"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp.port
    return settings


@pytest.mark.django_db
def test_contact_page_gives_the_invite_link_and_its_qr_code_only_on_request(
    admin_client, telegram_bot_settings
):
    user = get_user_model().objects.create_user("nia")
    url = reverse("admin:notifications_usercontact_change", args=[user.contact.pk])
    page = admin_client.get(url).content.decode()
    assert "Not linked to Telegram yet." in page
    assert "?start=" not in page and not TelegramLink.objects.exists()  # a GET never writes
    assert "Show a Telegram link" in page

    link_url = reverse("notify-contact-telegram-link", args=[user.contact.pk])
    assert admin_client.get(link_url).status_code == 405
    response = admin_client.post(link_url)
    assert "no-store" in response["Cache-Control"]
    shown = response.content.decode()
    link = re.search(r'id="telegram-link">(https://t\.me/notify_demo_bot\?start=[\w-]+)<', shown)
    assert link, shown
    assert "<svg" in shown and 'class="segno"' in shown  # the QR code, made here
    assert link.group(1) in admin_client.post(link_url).content.decode()  # the same link again
    assert TelegramLink.objects.count() == 1


@pytest.mark.django_db
def test_view_only_staff_see_no_invite_link_and_cannot_get_one(client, telegram_bot_settings):
    """Whoever has the link can move the user's Telegram chat to their own: staff who may only
    view contacts get neither the link nor the button."""
    user = get_user_model().objects.create_user("nia")
    viewer = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_usercontact"))
    client.force_login(viewer)
    page = client.get(
        reverse("admin:notifications_usercontact_change", args=[user.contact.pk])
    ).content.decode()
    assert "Not linked to Telegram yet." in page
    assert "Show a Telegram link" not in page and "?start=" not in page
    response = client.post(reverse("notify-contact-telegram-link", args=[user.contact.pk]))
    assert response.status_code == 403
    assert not TelegramLink.objects.exists()


@pytest.mark.django_db
def test_contact_page_says_when_telegram_is_not_configured(admin_client, settings):
    settings.TELEGRAM_BOT_TOKEN = ""
    user = get_user_model().objects.create_user("oleg")
    page = admin_client.get(
        reverse("admin:notifications_usercontact_change", args=[user.contact.pk])
    ).content.decode()
    assert "Telegram is not configured (TELEGRAM_BOT_TOKEN)." in page


@pytest.mark.django_db(transaction=True)
def test_invite_action_emails_a_link_that_links_the_chat(
    admin_client, telegram_bot_settings, telegram, smtp
):
    users = get_user_model()
    ann = users.objects.create_user("ann", email="ann@example.com")
    linked = users.objects.create_user("ben", email="ben@example.com")
    UserContact.objects.filter(user=linked).update(telegram_chat_id="42")
    nobody = users.objects.create_user("cy")
    response = admin_client.post(
        reverse("admin:notifications_usercontact_changelist"),
        {
            "action": "send_telegram_invite",
            "_selected_action": [u.contact.pk for u in (ann, linked, nobody)],
        },
        follow=True,
    )
    assert messages_of(response) == [
        "1 Telegram invite queued, 2 skipped: 1 already linked to Telegram, 1 no email address"
    ]
    invite = Notification.objects.get(user=ann)
    assert invite.channels == ["email"] and invite.status == Status.QUEUED

    deliver_now([invite.pk])

    [mail] = smtp.received
    assert mail.rcpt_tos == ["ann@example.com"]
    assert mail.message["Subject"] == "Get your notifications in Telegram"
    token = re.search(r"https://t\.me/notify_demo_bot\?start=([\w-]+)", mail.body).group(1)
    assert telegram.messages == []  # never sent by Telegram
    telegram_bot.process_update(
        {"update_id": 1, **telegram.message_update(9001, f"/start {token}")}
    )
    assert UserContact.objects.get(user=ann).telegram_chat_id == "9001"


@pytest.mark.django_db
def test_invite_action_on_users_may_use_sms_and_is_localised(
    admin_client, telegram_bot_settings, settings_no_autosend
):
    user = get_user_model().objects.create_user("dana")
    UserContact.objects.filter(user=user).update(phone="+79161234567")
    response = admin_client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "send_telegram_invite_sms", "_selected_action": [user.pk]},
        follow=True,
    )
    assert messages_of(response) == ["1 Telegram invite queued"]
    invite = Notification.objects.get(user=user)
    assert invite.channels == ["email", "sms"]
    assert segment_count(invite.message) == 1  # one paid SMS, not two
    result = telegram_invites_send(
        contacts=UserContact.objects.filter(user=user), allow_sms=True, language="ru"
    )
    assert result.sent == 1
    russian = Notification.objects.filter(user=user).latest("pk")
    assert russian.subject == "Уведомления в Telegram"
    assert "https://t.me/notify_demo_bot?start=" in russian.message


@pytest.mark.django_db
def test_invite_action_without_telegram_says_why(admin_client, settings):
    settings.TELEGRAM_BOT_TOKEN = ""
    user = get_user_model().objects.create_user("eve", email="eve@example.com")
    response = admin_client.post(
        reverse("admin:notifications_usercontact_changelist"),
        {"action": "send_telegram_invite", "_selected_action": [user.contact.pk]},
        follow=True,
    )
    assert "No invite sent: Telegram is not configured" in messages_of(response)[0]
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_notification_page_shows_the_sms_receipt_and_the_list_filters_by_it(
    admin_client, admin_user, settings_no_autosend
):
    [notification] = make_notifications(admin_user, [Status.UNDELIVERED])
    DeliveryAttempt.objects.create(
        notification=notification,
        channel="sms",
        transport="sms_smpp",
        outcome=DeliveryAttempt.Outcome.SUCCESS,
        provider_message_id="a,b,c",
        started_at=timezone.now(),
        receipt_status="undelivered",
        receipt_at=timezone.now(),
        receipt_error="part 2 of 3: UNDELIV err:001",
    )
    page = admin_client.get(
        reverse("admin:notifications_notification_change", args=[notification.pk])
    ).content.decode()
    assert re.search(r"Undelivered [\d-]+ [\d:]+: part 2 of 3: UNDELIV err:001", page)
    listing = admin_client.get(reverse(CHANGELIST) + "?status__exact=undelivered")
    assert f"/{notification.pk}/change/" in listing.content.decode()


# --- in Russian ---------------------------------------------------------------------------------

RU = {"HTTP_ACCEPT_LANGUAGE": "ru"}


@pytest.mark.django_db
def test_an_action_reports_in_russian_with_counts_that_read_right(
    admin_client, admin_user, settings_no_autosend
):
    selected = make_notifications(admin_user, [Status.PENDING] * 2 + [Status.SENT] * 3)
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "send_selected", "_selected_action": [n.pk for n in selected]},
        follow=True,
        **RU,
    )
    assert messages_of(response) == ["поставлено в очередь: 2, пропущено 3: уже отправлено: 3"]


@pytest.mark.django_db
def test_a_validation_error_and_the_not_saved_message_in_russian(
    admin_client, admin_user, settings_no_autosend
):
    form = {"user": admin_user.pk, "subject": "", "message": "привет", "channels": "telegram,fax"}
    refused = admin_client.post(reverse("admin:notifications_notification_add"), form, **RU)
    assert "Неизвестный канал &#x27;fax&#x27;; выберите из: telegram, email, sms." in (
        refused.content.decode()
    )
    (notification,) = make_notifications(admin_user, [Status.PENDING])
    Notification.objects.filter(pk=notification.pk).update(status=Status.SENT)
    response = admin_client.post(
        reverse("admin:notifications_notification_change", args=[notification.pk]),
        {"user": admin_user.pk, "subject": "", "message": "edited", "channels": "", **INLINE},
        follow=True,
        **RU,
    )
    assert messages_of(response) == [
        "Не сохранено: уведомление уже не ожидает (его тем временем поставили в очередь или "
        "отправили)."
    ]


@pytest.mark.django_db
def test_the_invite_action_reports_in_russian(admin_client, telegram_bot_settings):
    users = get_user_model()
    linked = users.objects.create_user("ben", email="ben@example.com")
    UserContact.objects.filter(user=linked).update(telegram_chat_id="42")
    nobody = users.objects.create_user("cy")
    response = admin_client.post(
        reverse("admin:notifications_usercontact_changelist"),
        {"action": "send_telegram_invite", "_selected_action": [linked.contact.pk, nobody.pk]},
        follow=True,
        **RU,
    )
    assert messages_of(response) == [
        "Приглашений в Telegram поставлено в очередь: 0, пропущено 2: "
        "Telegram уже подключён: 1, нет адреса эл. почты: 1"
    ]


@pytest.mark.django_db
def test_the_invite_goes_out_in_the_recipients_language_not_the_operators(
    admin_client, telegram_bot_settings, settings_no_autosend
):
    russian = get_user_model().objects.create_user("dasha", email="dasha@example.com")
    UserContact.objects.filter(user=russian).update(language="ru")
    english = get_user_model().objects.create_user("eric", email="eric@example.com")
    admin_client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "send_telegram_invite", "_selected_action": [russian.pk, english.pk]},
        follow=True,
        **RU,
    )
    assert Notification.objects.get(user=russian).subject == "Уведомления в Telegram"
    assert Notification.objects.get(user=english).subject == "Get your notifications in Telegram"


@pytest.mark.django_db
def test_the_chains_own_reasons_read_in_russian_and_providers_answers_as_they_came(
    admin_client, admin_user, settings_no_autosend
):
    [notification] = make_notifications(admin_user, [Status.FAILED])
    Notification.objects.filter(pk=notification.pk).update(
        last_error="no rounds left: 3 used (NOTIFY_MAX_ROUNDS)"
    )
    for channel, outcome, error in (
        ("telegram", "skipped", "the user blocked the bot"),
        ("email", "skipped", "opted out"),
        (
            "sms",
            "deferred",
            "daily SMS limit reached: 50 of 50 sent today (NOTIFY_SMS_DAILY_LIMIT)",
        ),
        ("sms", "permanent", "SMS Aero 400: invalid number"),
    ):
        DeliveryAttempt.objects.create(
            notification=notification,
            channel=channel,
            transport=channel,
            outcome=outcome,
            error=error,
            started_at=timezone.now(),
        )
    url = reverse("admin:notifications_notification_change", args=[notification.pk])
    page = admin_client.get(url, **RU).content.decode()
    assert "пользователь заблокировал бота" in page
    assert "достигнут дневной лимит SMS: сегодня отправлено 50 из 50" in page
    assert "раунды закончились: использовано 3 (NOTIFY_MAX_ROUNDS)" in page
    assert "SMS Aero 400: invalid number" in page  # a provider's answer is data
    assert "the user blocked the bot" in admin_client.get(url).content.decode()  # English


@pytest.mark.django_db
def test_the_api_key_pages_in_russian(admin_client):
    response = admin_client.post(
        reverse("admin:notifications_apikey_add"), {"name": "Магазин", "scope": "write"}, **RU
    )
    page = response.content.decode()
    assert "API-ключ «Магазин» создан" in page
    assert "Скопируйте ключ сейчас: он показывается только один раз." in page
    listing = admin_client.post(
        reverse("admin:notifications_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [ApiKey.objects.get().pk]},
        follow=True,
        **RU,
    )
    assert messages_of(listing) == ["1 ключ отозван: запросы с ним теперь получают ответ 401."]
