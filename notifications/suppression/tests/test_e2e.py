"""End to end: the real consumer sends an email to the real SMTP server; Postmark's delivery
webhook, posted to the live service, marks it delivered; its hard bounce suppresses the
address, and the consumer's next notification to that user skips email and goes by SMS
through the gateway. The webhook only stores; the consumer works the events off."""

from __future__ import annotations

import pytest

from notifications.models import DeliveryAttempt, Notification
from notifications.services import notification_create
from notifications.suppression.models import Suppression
from notifications.suppression.tests import postmark
from notifications.tests.fixtures import wait_for, wait_for_status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome


@pytest.fixture
def gateway_env(sms_smtp) -> dict[str, str]:
    """The consumer's SMS: the fake email-to-SMS gateway, its only transport."""
    return {
        "NOTIFY_SMS_TRANSPORTS": "smtp",
        "SMS_SMTP_HOST": "127.0.0.1",
        "SMS_SMTP_PORT": str(sms_smtp.port),
        "SMS_SMTP_USER": sms_smtp.username,
        "SMS_SMTP_PASSWORD": sms_smtp.password,
        "SMS_SMTP_FROM": "owner@example.com",
        "SMS_SMTP_ADDRESS": "{digits}@sms.example.net",
        "TELEGRAM_BOT_TOKEN": "",
    }


def test_delivery_then_a_hard_bounce_then_sms(
    start_consumer, gateway_env, webhook_secret, smtp, sms_smtp, make_user, http, live_server
):
    start_consumer(**gateway_env)
    user = make_user(email="ann@example.com", phone="+79161234567")

    first = notification_create(user=user, message="Your order has shipped")
    wait_for_status(first, Status.SENT)
    (mail,) = smtp.received
    message_id = mail.message["Message-ID"]
    assert first.attempts.get(channel="email").provider_message_id == message_id

    delivered = postmark.delivery(message_id.strip("<>"), "ann@example.com")
    assert postmark.post(http, live_server.url, delivered).status_code == 200
    wait_for_status(first, Status.DELIVERED)

    bounce = postmark.bounce("ann@example.com", message_id="another-message")
    assert postmark.post(http, live_server.url, bounce).status_code == 200
    wait_for(lambda: Suppression.objects.filter(address="ann@example.com").exists())

    second = notification_create(user=user, message="Your parcel is here")
    wait_for_status(second, Status.SENT)
    assert second.channel == "sms"
    assert len(smtp.received) == 1  # nothing more to the dead address
    assert [r.rcpt_tos for r in sms_smtp.received] == [["79161234567@sms.example.net"]]
    email = second.attempts.get(channel="email")
    assert email.outcome == Outcome.SKIPPED
    assert email.error.startswith("suppressed: hard bounce on 3 Dec")
    first.refresh_from_db()
    assert first.status == Status.DELIVERED  # the bounce named another message
