"""The SMPP session against the fake SMSC when the SMSC sends requests of its own.

Each side numbers its own requests, so an SMSC's ``alert_notification``, ``data_sm`` or a
command we do not know may carry the sequence number of a submit_sm still waiting for its
answer: only the real ``submit_sm_resp`` may answer that submit. Each request gets the answer
SMPP 3.4 gives it, and none leaves a session that looks bound but no longer reads (so
keep-alives, receipts and the next submit's answer would never come). ``SMPP_TIMEOUT`` is
short: a submit left waiting fails as ambiguous, which fails these tests.
"""

from __future__ import annotations

import pytest
import smpplib.consts as c

from notifications import receipts
from notifications.delivery import deliver_now
from notifications.models import DeliveryAttempt, Notification
from notifications.senders import sms_smpp
from notifications.services import notification_create
from notifications.tests.fixtures import wait_for, wait_for_status
from notifications.tests.test_senders_sms import configure

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome
PHONE = "+79161234567"


@pytest.fixture
def smpp_settings(settings, sms_env, monkeypatch):
    """SMPP as the only SMS transport, its receipts handled here, as in the consumer."""
    configure(settings, sms_env)
    settings.NOTIFY_HTTP_TIMEOUT = 2.0
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.EMAIL_HOST = ""
    settings.NOTIFY_SMS_TRANSPORTS = ["smpp"]
    settings.SMPP_TIMEOUT = 1.0
    monkeypatch.setattr(sms_smpp, "_deliver_handlers", [receipts.handle_deliver_sm])
    return settings


def send_sms(make_user, message: str) -> Notification:
    """One SMS through delivery, as a worker sends it; it must be sent (its receipt may have
    made it ``delivered`` already)."""
    user = make_user(phone=PHONE)
    notification = notification_create(user=user, message=message, channels=["sms"], queue=False)
    Notification.objects.filter(pk=notification.pk).update(status=Status.QUEUED)
    [decision] = deliver_now([notification.pk])
    notification.refresh_from_db()
    assert decision.status == Status.SENT, notification.last_error
    assert notification.status in (Status.SENT, Status.DELIVERED)
    return notification


def round_trip(smpp) -> None:
    """An enquire_link from the SMSC, answered: whatever the client sent before is in."""
    answered = smpp.enquire_link_resps
    assert smpp.send_enquire_link() == 1
    wait_for(lambda: smpp.enquire_link_resps == answered + 1, 10, "the enquire_link_resp")


# --- point 1: only a response answers a submit ------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("kind", "answer"),
    [
        ("alert_notification", None),  # SMPP 3.4 gives it no response
        ("data_sm", ("data_sm_resp", c.SMPP_ESME_ROK)),
        ("unknown", ("generic_nack", c.SMPP_ESME_RINVCMDID)),
    ],
)
def test_an_smsc_request_with_a_waiting_submits_sequence_never_answers_that_submit(
    smpp_settings, smpp, make_user, kind, answer
):
    smpp.interject = [kind]
    notification = send_sms(make_user, "Your code is 1234")

    [part] = smpp.parts
    [(sent, sequence)] = smpp.requests_sent
    assert (sent, sequence) == (kind, part.sequence)  # it shared the submit's number
    [attempt] = notification.attempts.all()
    assert (attempt.outcome, attempt.provider_message_id) == (Outcome.SUCCESS, part.message_id)
    if answer is None:
        round_trip(smpp)
        assert smpp.answers == []
    else:
        wait_for(lambda: smpp.answers, 10, f"the answer to {kind}")
        assert smpp.answers == [(*answer, sequence)]
    wait_for_status(notification, Status.DELIVERED, timeout=15)  # its receipt matched
    assert len(smpp.parts) == 1  # sent once
    assert smpp.binds == [("smppuser", True)]  # on one session throughout


# --- point 2: nothing the SMSC sends leaves a dead reader behind a bound session ---------------


@pytest.mark.django_db(transaction=True)
def test_an_unknown_command_from_the_smsc_is_nacked_and_the_session_keeps_working(
    smpp_settings, smpp, make_user
):
    first = send_sms(make_user, "one")
    wait_for_status(first, Status.DELIVERED, timeout=15)

    assert smpp.send_request("unknown") == 1
    wait_for(lambda: smpp.answers, 10, "an answer to the unknown command")
    [(_, sequence)] = smpp.requests_sent
    assert smpp.answers == [("generic_nack", c.SMPP_ESME_RINVCMDID, sequence)]
    round_trip(smpp)  # keep-alives still answered

    second = send_sms(make_user, "two")
    wait_for_status(second, Status.DELIVERED, timeout=15)
    assert [p.text for p in smpp.parts] == ["one", "two"]
    assert smpp.binds == [("smppuser", True)]
    wait_for(lambda: len(smpp.acks) == 2, 10, "both receipts acknowledged")


@pytest.mark.django_db(transaction=True)
def test_a_malformed_pdu_breaks_the_session_and_the_next_send_binds_again(
    smpp_settings, smpp, make_user
):
    first = send_sms(make_user, "one")
    wait_for_status(first, Status.DELIVERED, timeout=15)

    assert smpp.send_request("malformed") == 1
    wait_for(lambda: smpp.open_connections == 0, 10, "the client to drop the broken session")

    second = send_sms(make_user, "two")  # binds again, and is answered
    wait_for_status(second, Status.DELIVERED, timeout=15)
    assert [p.text for p in smpp.parts] == ["one", "two"]  # nothing sent twice
    assert smpp.binds == [("smppuser", True), ("smppuser", True)]
    assert second.attempts.get().outcome == Outcome.SUCCESS
    wait_for(lambda: len(smpp.acks) == 2, 10, "both receipts acknowledged")
