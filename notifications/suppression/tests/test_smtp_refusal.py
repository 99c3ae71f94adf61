"""Plain SMTP: the server refusing a recipient as unknown at RCPT (550 5.1.1) suppresses the
address where the attempt is recorded; the chain falls through to SMS at once, and the next
notification skips email without calling the server. A temporary refusal (451) or a refusal
for another reason (550 5.7.1) suppresses nothing. The email-to-SMS gateway's refusals never
suppress an email address."""

from __future__ import annotations

import smtplib

import pytest

from notifications.models import DeliveryAttempt, Notification
from notifications.operations import metrics
from notifications.senders.email import RecipientUnknown, classify_mail_error, mailbox_unknown
from notifications.suppression.models import Suppression
from notifications.suppression.tests.helpers import attempts, send

pytestmark = pytest.mark.django_db(transaction=True)

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome
PHONE = "+79161234567"


def test_a_550_5_1_1_suppresses_the_address_and_the_chain_goes_on_to_sms(
    mail_chain, smtp, sms_smtp, make_user
):
    smtp.handler.refuse_permanently.add("Gone@example.com")
    user = make_user(email="Gone@Example.com", phone=PHONE)
    before = metrics.REGISTRY.get_sample_value(
        "notify_suppressions_total", {"reason": "unknown_mailbox"}
    )
    first = send(user)
    assert (first.status, first.channel) == (Status.SENT, "sms")
    (email_attempt,) = [a for a in first.attempts.all() if a.channel == "email"]
    assert email_attempt.outcome == Outcome.PERMANENT
    assert "550 5.1.1 <Gone@example.com>: Recipient address rejected" in email_attempt.error
    assert smtp.received == []
    assert len(sms_smtp.received) == 1

    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.reason, suppression.provider) == (
        "gone@example.com",
        Suppression.Reason.UNKNOWN_MAILBOX,
        "SMTP",
    )
    assert "5.1.1" in suppression.provider_event["reply"]
    assert suppression.detail.startswith("SMTP server 127.0.0.1: 550 5.1.1")
    assert (
        metrics.REGISTRY.get_sample_value(
            "notify_suppressions_total", {"reason": "unknown_mailbox"}
        )
        == (before or 0) + 1
    )

    sessions = smtp.sessions
    second = send(user)
    assert (second.status, second.channel) == (Status.SENT, "sms")
    assert smtp.sessions == sessions  # the server was not asked again
    assert attempts(second)[1][:2] == ("email", Outcome.SKIPPED)
    assert attempts(second)[1][2].startswith("suppressed: unknown mailbox on ")
    assert len(sms_smtp.received) == 2


def test_a_temporary_refusal_suppresses_nothing(mail_chain, smtp, make_user):
    smtp.handler.refuse_temporarily.add("busy@example.com")
    notification = send(make_user(email="busy@example.com"), channels=["email"])
    assert notification.status == Status.QUEUED  # tried again later
    assert Suppression.objects.count() == 0


def test_a_refusal_for_another_reason_suppresses_nothing(mail_chain, smtp, make_user):
    """A policy refusal (5.7.1: relaying denied, spam) says nothing about the address."""

    async def refuse(server, session, envelope, address, rcpt_options):
        return "550 5.7.1 Relaying denied"

    smtp.handler.handle_RCPT = refuse
    try:
        notification = send(make_user(email="ann@example.com"), channels=["email"])
    finally:
        del smtp.handler.handle_RCPT
    assert notification.status == Status.FAILED
    assert Suppression.objects.count() == 0


def test_the_sms_gateways_refusal_suppresses_no_email_address(mail_chain, sms_smtp, make_user):
    sms_smtp.handler.refuse_permanently.add("79161234567@sms.example.net")
    notification = send(make_user(phone=PHONE), channels=["sms"])
    assert notification.status == Status.FAILED
    assert Suppression.objects.count() == 0


@pytest.mark.parametrize(
    ("code", "reply", "unknown"),
    [
        (550, "5.1.1 <a@b.c>: Recipient address rejected: User unknown", True),
        (550, "5.1.10 Recipient address has null MX", True),
        (553, "5.1.3 Bad recipient address syntax", True),
        (550, "5.1.2 Host unknown", True),
        (550, "No such user here", True),
        (550, "Requested action not taken: mailbox unavailable", False),
        (550, "5.1.0 Sender denied", False),
        (550, "5.7.1 User unknown in relay recipient table? no: policy", False),
        (554, "5.7.1 Message rejected as spam", False),
        (450, "4.1.1 User unknown (try later)", False),
        (550, "5.1.11 something else", False),
    ],
)
def test_which_refusals_mean_an_unknown_mailbox(code, reply, unknown):
    assert mailbox_unknown(code, f"{code} {reply}") is unknown


def test_the_refused_path_classifies_unknown_recipients_only():
    refused = smtplib.SMTPRecipientsRefused(
        {"a@example.com": (550, b"5.1.1 <a@example.com>: User unknown")}
    )
    error = classify_mail_error(refused, "SMTP server x")
    assert isinstance(error, RecipientUnknown) and error.permanent
    assert error.replies == {"a@example.com": "550 5.1.1 <a@example.com>: User unknown"}
    blocked = smtplib.SMTPRecipientsRefused({"a@example.com": (554, b"5.7.1 blocked")})
    assert not isinstance(classify_mail_error(blocked, "SMTP server x"), RecipientUnknown)
