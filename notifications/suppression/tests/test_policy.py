"""A suppressed address in the delivery chain, in process against the fake SMTP server and
the fake email-to-SMS gateway: the email channel is skipped before any send, with the reason,
and the chain falls through to SMS; required categories too; per address, any case; a lifted
suppression or a new address sends again; a batch reads its suppressions in one query; a
campaign counts a recipient it can only reach at a suppressed address as skipped."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.composing import CampaignFiller
from notifications.delivery import claim
from notifications.models import (
    Campaign,
    CampaignSkip,
    DeliveryAttempt,
    Notification,
    UserContact,
)
from notifications.preferences.models import Category
from notifications.suppression.models import Suppression
from notifications.suppression.services import suppression_create, suppression_lift
from notifications.suppression.tests.helpers import attempts, send

pytestmark = pytest.mark.django_db(transaction=True)

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome
PHONE = "+79161234567"
BOUNCED_AT = datetime(2026, 12, 3, 16, 33, tzinfo=timezone.get_fixed_timezone(0))


def hard_bounce(address: str) -> Suppression:
    suppression = suppression_create(
        address=address,
        reason=Suppression.Reason.HARD_BOUNCE,
        provider="Postmark",
        event_type="bounced",
        occurred_at=BOUNCED_AT,
    )
    assert suppression is not None
    return suppression


def expected_reason() -> str:
    year = "" if timezone.now().year == 2026 else " 2026"
    return f"suppressed: hard bounce on 3 Dec{year}"


def test_a_suppressed_address_skips_email_before_any_send_and_falls_through_to_sms(
    mail_chain, smtp, sms_smtp, make_user
):
    user = make_user(email="ann@example.com", phone=PHONE)
    hard_bounce("ann@example.com")
    notification = send(user)
    assert (notification.status, notification.channel) == (Status.SENT, "sms")
    assert smtp.received == [] and smtp.sessions == 0  # no connection, no RCPT
    assert [r.rcpt_tos for r in sms_smtp.received] == [["79161234567@sms.example.net"]]
    assert attempts(notification)[:2] == [
        ("telegram", Outcome.SKIPPED, "not configured"),
        ("email", Outcome.SKIPPED, expected_reason()),
    ]
    assert attempts(notification)[2][:2] == ("sms", Outcome.SUCCESS)


def test_with_email_its_only_channel_the_notification_fails_and_nothing_is_sent(
    mail_chain, smtp, make_user
):
    user = make_user(email="ann@example.com")
    hard_bounce("ann@example.com")
    notification = send(user, channels=["email"])
    assert notification.status == Status.FAILED
    assert notification.last_error == f"no usable contact: email: {expected_reason()}"
    assert smtp.received == []


def test_a_required_category_skips_a_dead_address_too(mail_chain, smtp, sms_smtp, make_user):
    codes = Category.objects.create(key="codes", name_en="Login codes", required=True)
    user = make_user(email="ann@example.com", phone=PHONE)
    hard_bounce("ann@example.com")
    notification = send(user, "Your code is 1234", category=codes)
    assert (notification.status, notification.channel) == (Status.SENT, "sms")
    assert smtp.received == []
    assert ("email", Outcome.SKIPPED, expected_reason()) in attempts(notification)


def test_the_address_matches_in_any_case_and_spacing(mail_chain, smtp, make_user):
    contact_user = make_user(phone=PHONE)
    UserContact.objects.filter(user=contact_user).update(email="  Ann@Example.COM ")
    hard_bounce("ann@EXAMPLE.com")
    assert Suppression.objects.get().address == "ann@example.com"
    notification = send(contact_user)
    assert notification.channel == "sms"
    assert smtp.received == []


def test_a_new_address_and_a_lifted_suppression_both_send_email_again(
    mail_chain, smtp, sms_smtp, make_user, admin_user
):
    user = make_user(email="old@example.com", phone=PHONE)
    other = make_user(email="old@example.com")  # a second user sharing the dead address
    suppression = hard_bounce("old@example.com")
    UserContact.objects.filter(user=user).update(email="new@example.com")
    assert send(user).channel == "email"
    assert [r.rcpt_tos for r in smtp.received] == [["new@example.com"]]
    assert send(other, channels=["email"]).status == Status.FAILED

    assert suppression_lift(suppressions=Suppression.objects.all(), user=admin_user) == 1
    suppression.refresh_from_db()
    assert (suppression.lifted_by, suppression.active) == (admin_user, False)
    again = send(other, channels=["email"])
    assert (again.status, again.channel) == (Status.SENT, "email")
    assert [r.rcpt_tos for r in smtp.received] == [["new@example.com"], ["old@example.com"]]
    assert sms_smtp.received == []
    assert Suppression.objects.count() == 1  # lifted, not deleted


def test_a_claimed_batch_reads_its_suppressions_with_one_query(mail_chain, make_user):
    users = [make_user(email=f"user{n}@example.com") for n in range(5)]
    hard_bounce("user2@example.com")
    hard_bounce("stranger@example.com")
    ids = []
    for user in users:
        notification = Notification.objects.create(
            user=user, message="hello", status=Status.QUEUED, next_attempt_at=timezone.now()
        )
        ids.append(notification.pk)
    with CaptureQueriesContext(connection) as queries:
        jobs = claim(ids)
    reads = [q["sql"] for q in queries.captured_queries if "suppression_suppression" in q["sql"]]
    assert len(reads) == 1
    assert jobs[0].policy.suppressed == {"user2@example.com": expected_reason()}


def test_a_campaign_counts_a_recipient_reachable_only_at_a_suppressed_address(
    mail_chain, make_user
):
    dead = make_user(email="dead@example.com")
    also_sms = make_user(email="dead2@example.com", phone=PHONE)
    alive = make_user(email="alive@example.com")
    hard_bounce("dead@example.com")
    hard_bounce("dead2@example.com")
    campaign = Campaign.objects.create(
        name="Sale",
        message="Sale!",
        channels=["email", "sms"],
        audience_ids=[dead.pk, also_sms.pk, alive.pk],
    )
    while not CampaignFiller(campaign.pk).step().done:
        pass
    campaign.refresh_from_db()
    assert (campaign.recipients, campaign.skipped) == (2, 1)
    skip = CampaignSkip.objects.get(campaign=campaign)
    assert skip.user == dead
    assert (skip.reason, skip.channels) == (
        CampaignSkip.Reason.NO_ADDRESS,
        {"email": "suppressed", "sms": "no_address"},
    )
