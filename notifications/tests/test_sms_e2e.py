"""End to end: the real consumer falls back Telegram → Email → SMS (API → SMTP → SMPP)."""

from __future__ import annotations

import pytest

from notifications.models import DeliveryAttempt, Notification
from notifications.services import notification_create
from notifications.tests.conftest import wait_for_status

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome


def test_telegram_and_email_failing_ends_sent_by_sms_after_each_transport(
    start_consumer, telegram, smtp, smsaero, sms_smtp, smpp, sms_env, make_user
):
    telegram.per_chat["1111"] = "403"
    smtp.handler.refuse_permanently.add("gone@example.com")
    smsaero.mode = "500"
    sms_smtp.handler.refuse_temporarily.add("79161234567@smsaero.ru")
    start_consumer(**sms_env)
    user = make_user(email="gone@example.com", telegram_chat_id="1111", phone="+79161234567")
    text = "Ваш заказ доставлен. " * 10  # 210 characters, Cyrillic: 4 UCS2 parts
    notification = notification_create(user=user, message=text)

    wait_for_status(notification, {Status.SENT, Status.FAILED})

    assert notification.status == Status.SENT
    assert notification.channel == "sms"
    attempts = list(
        notification.attempts.order_by("started_at", "id").values_list(
            "channel", "transport", "outcome"
        )
    )
    assert attempts == [
        ("telegram", "telegram", Outcome.PERMANENT),
        ("email", "smtp", Outcome.PERMANENT),
        ("sms", "sms_api", Outcome.TRANSIENT),
        ("sms", "sms_smtp", Outcome.TRANSIENT),
        ("sms", "sms_smpp", Outcome.SUCCESS),
    ]
    assert smpp.messages() == [("79161234567", text)]
    success = notification.attempts.get(outcome=Outcome.SUCCESS)
    assert success.segments == 4
    assert len(success.provider_message_id.split(",")) == 4
    assert smsaero.sent == [] and sms_smtp.received == []
    for error in notification.attempts.values_list("error", flat=True):
        assert smsaero.api_key not in error
        assert sms_smtp.password not in error
