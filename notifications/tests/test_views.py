"""The operator's pages: Send a notification… (preview, confirm, a campaign), the campaign's
progress and Cancel the rest, templates refused with the field that is wrong, the list's
live rows, a contact's test, the dashboard's numbers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from notifications import statistics, tasks
from notifications.models import (
    Campaign,
    CampaignSkip,
    DeliveryAttempt,
    Notification,
    Template,
    UserContact,
)

pytestmark = pytest.mark.django_db
User = get_user_model()
Status = Notification.Status
USERS = reverse("admin:auth_user_changelist")


@pytest.fixture
def rung(monkeypatch) -> list:
    calls: list = []
    monkeypatch.setattr(
        tasks, "ring", lambda ids, eta=None, size=None: calls.append((sorted(ids), eta))
    )
    monkeypatch.setattr(tasks, "campaign_fill", lambda pk: calls.append(("fill", pk)))
    return calls


def people(count: int, prefix: str = "p", **contact) -> list:
    created = User.objects.bulk_create(
        User(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com") for i in range(count)
    )
    UserContact.objects.bulk_create(UserContact(user=u, **contact) for u in created)
    return created


def compose(client, ids, *, url=USERS, button="_preview", everyone=False, **fields):
    data = {
        "action": "send_notification",
        "_selected_action": [str(pk) for pk in ids],
        "_compose": "1",
        "message": "",
        "subject": "",
        "context": "",
        "send_at_0": "",
        "send_at_1": "",
        button: "1",
        **fields,
    }
    if everyone:
        data["select_across"] = "1"
    return client.post(url, data)


def test_the_action_opens_the_compose_page_for_the_selection(admin_client):
    chosen = people(3)
    response = admin_client.post(
        USERS, {"action": "send_notification", "_selected_action": [u.pk for u in chosen]}
    )
    assert response.status_code == 200
    assert "To the 3 selected recipients." in response.text
    assert not Campaign.objects.exists()


def test_preview_shows_each_channel_and_the_sms_segments_and_cost(admin_client, settings):
    settings.NOTIFY_SMS_PRICE = Decimal("4.5")
    chosen = people(2)
    response = compose(admin_client, [u.pk for u in chosen], message="я" * 80, subject="Hi")
    assert response.status_code == 200
    preview = response.context["preview"]
    assert [row["channel"] for row in preview] == ["telegram", "email", "sms"]
    assert preview[1]["content"].subject == "Hi"
    assert preview[2]["sms"].segments == 2
    assert preview[2]["sms_total"] == Decimal("18.0")  # 2 segments × 4.5 × 2 recipients
    assert "2 SMS segments" in response.text
    assert not Campaign.objects.exists()


def test_confirming_creates_the_campaign_in_the_request_for_a_small_selection(
    admin_client, admin_user, rung, django_capture_on_commit_callbacks
):
    chosen = people(3)
    with django_capture_on_commit_callbacks(execute=True):
        response = compose(
            admin_client,
            [u.pk for u in chosen],
            button="_send",
            message="Maintenance tonight",
            channels=["email", "sms"],
        )
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:notifications_campaign_change", args=[campaign.pk])
    assert (campaign.state, campaign.recipients, campaign.created_by) == (
        Campaign.State.READY,
        3,
        admin_user,
    )
    rows = Notification.objects.filter(campaign=campaign)
    assert {n.channels == ["email", "sms"] and n.status == Status.QUEUED for n in rows} == {True}
    assert sorted(pk for ids, _ in rung for pk in ids) == sorted(rows.values_list("pk", flat=True))


def test_confirming_costs_the_same_queries_for_5_or_500_recipients(admin_client, rung):
    counts = []
    for size in (5, 500):
        chosen = people(size, prefix=f"q{size}-")
        with CaptureQueriesContext(connection) as queries:
            compose(admin_client, [u.pk for u in chosen], button="_send", message="hi")
        counts.append(len(queries))
    assert Notification.objects.count() == 505
    assert counts[0] == counts[1]


def test_everyone_matching_the_filter_is_created_by_the_consumer_with_the_filter_kept(
    admin_client, rung, django_capture_on_commit_callbacks
):
    staff = people(4, prefix="staff")
    User.objects.filter(pk__in=[u.pk for u in staff]).update(is_staff=True)
    people(3, prefix="plain")
    with django_capture_on_commit_callbacks(execute=True):
        response = compose(
            admin_client,
            [staff[0].pk],
            url=USERS + "?is_staff__exact=1",
            button="_send",
            everyone=True,
            message="hi",
        )
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert campaign.audience_all and campaign.audience_query == "is_staff__exact=1"
    assert campaign.audience_size == 5  # the 4 + the admin, who is staff too
    assert campaign.state == Campaign.State.CREATING and not Notification.objects.exists()
    assert rung == [("fill", campaign.pk)]  # nothing created inside the request


def test_a_template_with_a_missing_variable_is_refused_before_anything_is_stored(admin_client):
    template = Template.objects.create(
        key="maintenance",
        name="Maintenance",
        telegram_text_en="Maintenance at <b>{{ start }}</b>",
        email_subject_en="Maintenance",
        email_text_en="Maintenance at {{ start }}",
        sms_text_en="Maintenance at {{ start }}",
    )
    chosen = people(2)
    response = compose(
        admin_client, [u.pk for u in chosen], button="_send", template=template.pk, context="{}"
    )
    assert response.status_code == 200
    assert "start, missing from the context" in response.text
    assert not Campaign.objects.exists() and not Notification.objects.exists()
    response = compose(
        admin_client,
        [u.pk for u in chosen],
        button="_send",
        template=template.pk,
        context='{"start": "02:00"}',
    )
    assert response.status_code == 302
    notification = Notification.objects.first()
    assert notification.rendered["telegram"] == {
        "text": "Maintenance at <b>02:00</b>",
        "parse_mode": "HTML",
    }


def test_contacts_action_reaches_their_users_and_lists_those_opted_out(admin_client, rung):
    reachable = people(2, prefix="in")
    out = people(1, prefix="out", telegram_opt_out=True, email_opt_out=True, sms_opt_out=True)
    contacts = UserContact.objects.filter(user__in=[*reachable, *out])
    compose(
        admin_client,
        list(contacts.values_list("pk", flat=True)),
        url=reverse("admin:notifications_usercontact_changelist"),
        button="_send",
        message="hi",
    )
    campaign = Campaign.objects.get()
    assert (campaign.recipients, campaign.skipped) == (2, 1)
    page = admin_client.get(reverse("admin:notifications_campaign_change", args=[campaign.pk]))
    assert "out0" in page.text and "opted out of every channel" in page.text


def test_campaign_progress_counts_and_reaches_100_percent(admin_client, rung):
    chosen = people(4)
    compose(admin_client, [u.pk for u in chosen], button="_send", message="hi")
    campaign = Campaign.objects.get()
    url = reverse("notify-campaign-progress", args=[campaign.pk])
    data = admin_client.get(url).json()
    assert (data["percent"], data["done"], data["text"]["status_queued"]) == (0, False, "4")
    rows = list(Notification.objects.filter(campaign=campaign))
    Notification.objects.filter(pk__in=[n.pk for n in rows[:3]]).update(
        status=Status.SENT, channel="email"
    )
    Notification.objects.filter(pk=rows[3].pk).update(status=Status.FAILED)
    data = admin_client.get(url).json()
    assert (data["percent"], data["done"]) == (100, True)
    assert data["text"]["delivery_rate"] == "75.0 %"
    assert data["text"]["channels"] == "Email: 3"


def test_cancel_the_rest_cancels_only_what_waits(admin_client, rung):
    chosen = people(3)
    compose(admin_client, [u.pk for u in chosen], button="_send", message="hi")
    campaign = Campaign.objects.get()
    first = Notification.objects.filter(campaign=campaign).first()
    Notification.objects.filter(pk=first.pk).update(status=Status.SENT)
    response = admin_client.post(reverse("notify-campaign-cancel", args=[campaign.pk]), follow=True)
    assert "2 cancelled, 1 skipped: 1 already sent" in response.text
    assert sorted(Notification.objects.values_list("status", flat=True)) == [
        Status.CANCELLED,
        Status.CANCELLED,
        Status.SENT,
    ]


def test_a_template_that_telegram_would_refuse_is_not_saved(admin_client):
    data = {
        "name": "Broken",
        "key": "broken",
        "example_context": "{}",
        "telegram_text_en": "<p>Hello</p>",
        "email_subject_en": "Hello",
        "email_text_en": "Hello",
        "email_html_en": "",
        "sms_text_en": "Hello {% if %}",
    }
    for lang in ("ru",):
        for part in Template.PARTS:
            data[f"{part}_{lang}"] = ""
    response = admin_client.post(reverse("admin:notifications_template_add"), data)
    assert response.status_code == 200
    assert "&lt;p&gt; is not allowed" in response.text
    assert not Template.objects.exists()
    data.update(telegram_text_en="<b>Hello</b>", sms_text_en="Hello")
    response = admin_client.post(reverse("admin:notifications_template_add"), data)
    assert response.status_code == 302 and Template.objects.get().languages() == ["en"]


def test_the_list_polls_the_state_of_live_rows(admin_client, admin_user):
    notification = Notification.objects.create(user=admin_user, message="hi", status=Status.QUEUED)
    page = admin_client.get(reverse("admin:notifications_notification_changelist"))
    assert (
        f'data-nf-id="{notification.pk}" data-nf-cell="status" data-nf-status="queued"' in page.text
    )
    Notification.objects.filter(pk=notification.pk).update(
        status=Status.SENT, channel="telegram", rounds=1
    )
    data = admin_client.get(
        reverse("notify-notification-states") + f"?ids={notification.pk}"
    ).json()
    state = data["notifications"][str(notification.pk)]
    assert (state["status"], state["live"], state["cells"]["channel"]) == (
        "sent",
        False,
        "Telegram",
    )
    assert "Sent" in state["cells"]["status"]
    assert admin_client.get(reverse("notify-notification-states") + "?ids=x").status_code == 400


@pytest.mark.parametrize("ids", ["99999999999999999999", "1,9223372036854775808", "0", "-5"])
def test_the_live_rows_endpoint_refuses_ids_no_row_can_have(admin_client, ids):
    response = admin_client.get(reverse("notify-notification-states") + f"?ids={ids}")
    assert response.status_code == 400
    assert "between 1 and 9223372036854775807" in response.json()["error"]


def test_every_page_sends_a_content_security_policy_without_inline_script(admin_client, client):
    for response in (
        admin_client.get(reverse("admin:index")),
        admin_client.get(reverse("notify-dashboard")),
        client.get(reverse("admin:login")),
    ):
        policy = dict(
            part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";")
        )
        assert policy["script-src"] == "'self'"
        assert policy["style-src"] == "'self'"
        assert policy["object-src"] == "'none'"
        assert policy["frame-ancestors"] == "'none'"


def test_a_page_previewing_email_html_lets_only_inline_styles_through(admin_client):
    chosen = people(1)
    response = compose(admin_client, [u.pk for u in chosen], message="hi")
    policy = response["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in policy
    assert "script-src 'self';" in policy + ";"


def test_the_notification_page_reads_its_attempts_as_a_timeline(admin_client, admin_user):
    notification = Notification.objects.create(user=admin_user, message="hi", status=Status.SENT)
    now = timezone.now()
    DeliveryAttempt.objects.create(
        notification=notification,
        round=1,
        channel="telegram",
        transport="telegram",
        outcome="skipped",
        error="no Telegram chat id",
        started_at=now,
    )
    DeliveryAttempt.objects.create(
        notification=notification,
        round=1,
        channel="email",
        transport="email",
        outcome="success",
        started_at=now,
    )
    page = admin_client.get(
        reverse("admin:notifications_notification_change", args=[notification.pk])
    )
    assert [a.channel for r in page.context["attempt_rounds"] for a in r["attempts"]] == [
        "telegram",
        "email",
    ]
    assert "Round 1" in page.text and 'class="nf-timeline"' in page.text


def test_send_a_test_creates_one_notification_for_the_contact(admin_client, rung):
    user = people(1, prefix="t")[0]
    contact = user.contact
    page = admin_client.get(reverse("admin:notifications_usercontact_change", args=[contact.pk]))
    assert "Send a test" in page.text
    response = admin_client.post(
        reverse("notify-contact-send-test", args=[contact.pk]), HTTP_ACCEPT="application/json"
    )
    notification = Notification.objects.get(user=user)
    assert response.json()["id"] == notification.pk
    assert notification.status == Status.QUEUED and "test notification" in notification.message
    assert notification.expires_at is not None


@pytest.mark.parametrize("period", ["today", "7d", "30d"])
def test_the_dashboard_of_a_fresh_install_answers(admin_client, period):
    """Nothing sent yet: on PostgreSQL the percentiles of no rows used to be a 500."""
    response = admin_client.get(reverse("notify-dashboard") + f"?period={period}")
    assert response.status_code == 200
    assert "Dashboard" in response.text


def test_the_dashboard_shows_the_numbers(admin_client, admin_user, settings):
    settings.NOTIFY_SMS_DAILY_LIMIT = 100
    now = timezone.now()
    sent = Notification.objects.bulk_create(
        Notification(
            user=admin_user,
            message="m",
            status=status,
            channel=channel,
            queued_at=now - timedelta(seconds=10),
            sent_at=now - timedelta(seconds=10 - took) if took is not None else None,
        )
        for status, channel, took in [
            (Status.SENT, "telegram", 1),
            (Status.SENT, "telegram", 3),
            (Status.DELIVERED, "sms", 5),
            (Status.FAILED, "", None),
        ]
    )
    DeliveryAttempt.objects.create(
        notification=sent[3],
        channel="email",
        transport="email",
        outcome="permanent",
        error="SMTP 550: no such user",
        started_at=now,
    )
    DeliveryAttempt.objects.create(
        notification=sent[2],
        channel="sms",
        transport="smsaero",
        outcome="success",
        segments=2,
        cost=Decimal("9.00"),
        started_at=now,
    )
    Notification.objects.create(
        user=admin_user, message="due", status=Status.QUEUED, next_attempt_at=now
    )
    data = statistics.dashboard("today")
    telegram = next(c for c in data.channels if c.channel == "telegram")
    assert (telegram.sent, telegram.p50, telegram.p95) == (
        2,
        timedelta(seconds=2),
        timedelta(seconds=2.9),
    )
    assert data.delivery_rate == 0.75 and data.queue_due == 1
    assert (data.sms_sent, data.sms_segments, data.sms_cost) == (1, 2, Decimal("9.00"))
    for period in ("today", "30d"):
        today = statistics.dashboard(period).sms_today
        assert (today.sent, today.segments, today.cost, today.limit) == (1, 2, Decimal("9.00"), 100)
    assert data.failures[0]["reason"] == "SMTP 550: no such user"
    page = admin_client.get(reverse("notify-dashboard") + "?period=7d")
    assert page.status_code == 200
    assert "75.0 %" in page.text and "SMTP 550: no such user" in page.text
    assert "<svg" in page.text and "daily cap 100" in page.text


def test_the_pages_need_their_permissions(client, django_user_model):
    clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    client.force_login(clerk)
    assert client.get(reverse("notify-dashboard")).status_code == 403
    assert client.get(reverse("notify-notification-states")).status_code == 403
    assert CampaignSkip.objects.count() == 0
