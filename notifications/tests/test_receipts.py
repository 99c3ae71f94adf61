"""Delivery receipts: SMS Aero by callback and by poll, SMPP deliver_sm from the fake SMSC
(UUID ids, minimal text, parts out of order, redelivered, before the submit_sm_resp, stored
while unbound), ending the notification delivered or undelivered."""

from __future__ import annotations

import random
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from notifications import receipts
from notifications.delivery import deliver_now
from notifications.models import DeliveryAttempt, Notification, ReceiptStatus, SmsPart
from notifications.senders import sms_smpp
from notifications.services import notification_create, notifications_resend
from notifications.tests.conftest import wait_for, wait_for_status
from notifications.tests.fakes.server import post
from notifications.tests.test_senders_sms import CYRILLIC_200, configure

Status = Notification.Status
PHONE = "+79161234567"
SECRET = "callback-secret-0123456789"


@pytest.fixture
def sms_settings(settings, sms_env):
    configure(settings, sms_env)
    settings.NOTIFY_HTTP_TIMEOUT = 2.0
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.EMAIL_HOST = ""
    settings.NOTIFY_RECEIPT_POLL_AFTER = 0.0
    return settings


@pytest.fixture
def api_only(sms_settings):
    sms_settings.NOTIFY_SMS_TRANSPORTS = ["api"]
    return sms_settings


@pytest.fixture
def smpp_only(sms_settings):
    """SMPP as the only transport, its receipts handled in this process."""
    sms_settings.NOTIFY_SMS_TRANSPORTS = ["smpp"]
    sms_smpp.on_deliver_sm(receipts.handle_deliver_sm)
    yield sms_settings
    sms_smpp._deliver_handlers.remove(receipts.handle_deliver_sm)


def sms_to(make_user, message: str = "Your code is 1234") -> Notification:
    user = make_user(phone=PHONE)
    return notification_create(user=user, message=message, channels=["sms"], queue=False)


def send(notification: Notification) -> DeliveryAttempt:
    Notification.objects.filter(pk=notification.pk).update(status=Status.QUEUED)
    [decision] = deliver_now([notification.pk])
    assert decision.status == Status.SENT
    return notification.attempts.get(outcome=DeliveryAttempt.Outcome.SUCCESS)


# --- reading receipts ---------------------------------------------------------------------------


def pdu(short_message: bytes, esm_class: int = 0x04, **tlvs) -> SimpleNamespace:
    return SimpleNamespace(esm_class=esm_class, short_message=short_message, **tlvs)


def test_minimal_smpp_receipt_text_is_read():
    receipt = receipts.smpp_receipt(
        pdu(
            b"id:6f1c2a9e-3b7d-4c1e-9a55-0d2f7e8b1c43 submit date:2611292301 "
            b"done date:2611292302 stat:UNDELIV err:001"
        )
    )
    assert receipt.message_id == "6f1c2a9e-3b7d-4c1e-9a55-0d2f7e8b1c43"
    assert receipt.state == ReceiptStatus.UNDELIVERED
    assert (receipt.provider_status, receipt.error_code) == ("UNDELIV", "001")


@pytest.mark.parametrize(
    ("stat", "state"),
    [
        ("DELIVRD", ReceiptStatus.DELIVERED),
        ("UNDELIV", ReceiptStatus.UNDELIVERED),
        ("REJECTD", ReceiptStatus.UNDELIVERED),
        ("EXPIRED", ReceiptStatus.UNDELIVERED),
        ("DELETED", ReceiptStatus.UNDELIVERED),
        ("ACCEPTD", ReceiptStatus.PENDING),
        ("ENROUTE", ReceiptStatus.PENDING),
    ],
)
def test_smpp_stats_map_to_receipt_states(stat, state):
    receipt = receipts.smpp_receipt(pdu(f"id:7 stat:{stat} err:000 text:hello".encode()))
    assert receipt.state == state


def test_smpp_tlvs_give_the_id_and_win_for_the_state():
    receipt = receipts.smpp_receipt(
        pdu(b"stat:DELIVRD", receipted_message_id=b"abc-1", message_state=5)
    )
    assert (receipt.message_id, receipt.state) == ("abc-1", ReceiptStatus.UNDELIVERED)


def test_a_message_from_a_handset_is_not_a_receipt():
    assert receipts.smpp_receipt(pdu(b"id:1 stat:DELIVRD", esm_class=0x00)) is None
    # smpplib's SMPP_MSGTYPE_DELIVERYACK (0x08) is the SME's acknowledgement, not a receipt.
    assert receipts.smpp_receipt(pdu(b"id:1 stat:DELIVRD", esm_class=0x08)) is None


@pytest.mark.parametrize(
    ("status", "state"),
    [
        (1, ReceiptStatus.DELIVERED),
        (2, ReceiptStatus.UNDELIVERED),
        (6, ReceiptStatus.UNDELIVERED),
        (0, ReceiptStatus.PENDING),
        (3, ReceiptStatus.PENDING),
        (4, ReceiptStatus.PENDING),
        (8, ReceiptStatus.PENDING),
    ],
)
def test_smsaero_keys_on_the_numeric_status_not_the_words(status, state):
    receipt = receipts.smsaero_receipt({"id": "77", "status": str(status), "extendStatus": "x"})
    assert (receipt.message_id, receipt.state) == ("77", state)


def test_smsaero_receipt_without_id_or_status_is_refused():
    with pytest.raises(ValueError, match="id"):
        receipts.smsaero_receipt({"status": 1})
    with pytest.raises(ValueError, match="status"):
        receipts.smsaero_receipt({"id": 5, "status": "delivery"})


# --- SMS Aero: callbacks ------------------------------------------------------------------------


@pytest.fixture
def callbacks(api_only, live_server):
    api_only.NOTIFY_PUBLIC_URL = live_server.url
    api_only.SMS_CALLBACK_SECRET = SECRET
    return api_only


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("kind", "final", "status"), [("json", 1, "delivered"), ("form", 2, "undelivered")]
)
def test_smsaero_callback_moves_sent_to_delivered_or_undelivered(
    callbacks, smsaero, make_user, live_server, kind, final, status
):
    notification = sms_to(make_user)
    attempt = send(notification)
    [sms] = smsaero.sent
    assert smsaero.callback_urls[sms["id"]] == f"{live_server.url}/sms/callback/{SECRET}/"

    smsaero.set_status(sms["id"], 4)  # waiting: not final
    assert smsaero.fire_callbacks(kind) == [200]
    notification.refresh_from_db()
    attempt.refresh_from_db()
    assert notification.status == Status.SENT
    assert attempt.receipt_status == ReceiptStatus.PENDING

    smsaero.set_status(sms["id"], final)
    assert smsaero.fire_callbacks(kind) == [200]
    notification.refresh_from_db()
    attempt.refresh_from_db()
    assert notification.status == status
    assert attempt.receipt_status == status
    assert attempt.receipt_at is not None
    assert attempt.receipt_error == ("" if final == 1 else "status 2 not delivered")
    if final == 2:
        assert "not delivered" in notification.last_error

    smsaero.set_status(sms["id"], 1)  # a late, contradicting callback changes nothing
    assert smsaero.fire_callbacks(kind) == [200]
    notification.refresh_from_db()
    assert notification.status == status


@pytest.mark.django_db(transaction=True)
def test_smsaero_callback_with_a_wrong_secret_changes_nothing(
    callbacks, smsaero, make_user, live_server
):
    notification = sms_to(make_user)
    send(notification)
    [sms] = smsaero.sent
    smsaero.set_status(sms["id"], 1)
    for secret in ("wrong-secret-0123456789", SECRET[:-1], SECRET + "x"):
        smsaero.callback_urls[sms["id"]] = f"{live_server.url}/sms/callback/{secret}/"
        assert smsaero.fire_callbacks() == [404]
    notification.refresh_from_db()
    assert notification.status == Status.SENT
    assert not SmsPart.objects.exclude(state=ReceiptStatus.PENDING).exists()


@pytest.mark.django_db(transaction=True)
def test_smsaero_callback_for_an_unknown_id_is_answered_and_matched_later(
    callbacks, smsaero, make_user, live_server
):
    url = f"{live_server.url}/sms/callback/{SECRET}/"
    # The id SMS Aero will give the next SMS: its receipt comes before our write of the send.
    next_id = smsaero._next_id + 1
    body = f'{{"id": {next_id}, "status": 1}}'.encode()
    assert post(url, body, {"Content-Type": "application/json"}) == 200
    assert (
        post(url, b"id=424242&status=2", {"Content-Type": "application/x-www-form-urlencoded"})
        == 200
    )
    assert post(url, b'{"status": 1}', {"Content-Type": "application/json"}) == 400

    notification = sms_to(make_user)
    attempt = send(notification)
    assert attempt.provider_message_id == str(next_id)
    notification.refresh_from_db()
    assert notification.status == Status.DELIVERED
    assert SmsPart.objects.get(message_id="424242").attempt is None  # kept, never matched


# --- SMS Aero: polling --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_smsaero_poll_finds_final_statuses_without_callbacks(api_only, smsaero, make_user):
    delivered, failed, waiting = (sms_to(make_user, f"Code {n}") for n in range(3))
    for notification in (delivered, failed, waiting):
        send(notification)
    ids = [sms["id"] for sms in smsaero.sent]
    assert smsaero.callback_urls == {}  # no NOTIFY_PUBLIC_URL: no callbacks asked for
    smsaero.set_status(ids[0], 1)
    smsaero.set_status(ids[1], 6)
    smsaero.set_status(ids[2], 8)

    assert receipts.poll_smsaero() == {"asked": 3, "final": 2, "errors": 0}

    for notification, status in (
        (delivered, "delivered"),
        (failed, "undelivered"),
        (waiting, "sent"),
    ):
        notification.refresh_from_db()
        assert notification.status == status
    status_calls = [r for r in smsaero.requests if "sms/status" in r["path"]]
    assert len(status_calls) == 3
    # Just asked: not asked again at once; once final, never again.
    assert receipts.poll_smsaero() == {"asked": 0, "final": 0, "errors": 0}
    SmsPart.objects.update(checked_at=timezone.now() - timedelta(hours=1))
    smsaero.set_status(ids[2], 1)
    assert receipts.poll_smsaero() == {"asked": 1, "final": 1, "errors": 0}
    waiting.refresh_from_db()
    assert waiting.status == Status.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_smsaero_poll_waits_a_few_minutes_and_gives_up_after_the_give_up_age(
    api_only, smsaero, make_user
):
    api_only.NOTIFY_RECEIPT_POLL_AFTER = 300.0
    notification = sms_to(make_user)
    send(notification)
    assert receipts.poll_smsaero()["asked"] == 0  # too soon
    SmsPart.objects.update(created_at=timezone.now() - timedelta(minutes=6))
    assert receipts.poll_smsaero()["asked"] == 1
    SmsPart.objects.update(created_at=timezone.now() - timedelta(hours=49), checked_at=None)
    assert receipts.poll_smsaero()["asked"] == 0  # past NOTIFY_RECEIPT_GIVE_UP (48 h)
    notification.refresh_from_db()
    assert notification.status == Status.SENT


@pytest.mark.django_db(transaction=True)
def test_a_late_receipt_never_overwrites_a_resent_notification(api_only, smsaero, make_user):
    notification = sms_to(make_user)
    send(notification)
    notifications_resend(queryset=Notification.objects.filter(pk=notification.pk))
    deliver_now([notification.pk])  # the second run sends a second SMS
    first, second = (sms["id"] for sms in smsaero.sent)
    smsaero.set_status(first, 2)
    receipts.poll_smsaero()
    notification.refresh_from_db()
    assert notification.status == Status.SENT  # the old run's receipt is the old run's
    smsaero.set_status(second, 1)
    SmsPart.objects.update(checked_at=None)  # as if the poll interval had passed
    receipts.poll_smsaero()
    notification.refresh_from_db()
    assert notification.status == Status.DELIVERED


# --- SMPP ---------------------------------------------------------------------------------------


def smpp_notification(make_user, message: str = CYRILLIC_200) -> Notification:
    return sms_to(make_user, message)


@pytest.mark.django_db(transaction=True)
def test_smpp_multipart_receipts_with_uuids_minimal_and_out_of_order(smpp_only, smpp, make_user):
    smpp.id_style = "uuid"
    smpp.receipt_style = "minimal"
    smpp.receipt_tlvs = False
    smpp.receipt_order = "reversed"
    notification = smpp_notification(make_user)
    attempt = send(notification)

    wait_for_status(notification, Status.DELIVERED, timeout=15)
    ids = attempt.provider_message_id.split(",")
    assert len(ids) == 3 and all(len(i) == 36 for i in ids)
    assert [d.message_id for d in smpp.deliveries] != ids  # they came out of order
    parts = SmsPart.objects.filter(attempt=attempt).order_by("part")
    assert [(p.message_id, p.state) for p in parts] == [(i, "delivered") for i in ids]
    attempt.refresh_from_db()
    assert attempt.receipt_status == ReceiptStatus.DELIVERED
    wait_for(lambda: len(smpp.acks) == 3, timeout=10, what="every receipt acknowledged")
    assert {status for _, status in smpp.acks} == {0}


@pytest.mark.django_db(transaction=True)
def test_smpp_one_failed_part_makes_the_sms_undelivered(smpp_only, smpp, make_user):
    smpp.receipt_stat_part = {2: "UNDELIV"}
    smpp.receipt_order = "shuffled"
    smpp.random = random.Random(7)
    notification = smpp_notification(make_user)
    attempt = send(notification)

    wait_for_status(notification, Status.UNDELIVERED, timeout=15)
    attempt.refresh_from_db()
    assert attempt.receipt_status == ReceiptStatus.UNDELIVERED
    assert attempt.receipt_error == "part 2 of 3: UNDELIV err:001"
    assert "part 2 of 3" in notification.last_error


@pytest.mark.django_db(transaction=True)
def test_smpp_redelivered_receipts_change_nothing_and_are_all_acknowledged(
    smpp_only, smpp, make_user
):
    smpp.receipt_redeliver = 2
    notification = smpp_notification(make_user, "Your code is 1234")
    send(notification)
    wait_for_status(notification, Status.DELIVERED, timeout=15)
    wait_for(lambda: len(smpp.acks) == 3, timeout=10, what="three acknowledgements")
    # A contradicting receipt for the same id, later, changes nothing either.
    [part] = smpp.parts
    smpp.receipt_redeliver = 0
    smpp.send_receipt(part.message_id, stat="UNDELIV")
    wait_for(lambda: len(smpp.acks) == 4, timeout=10, what="the fourth acknowledgement")
    notification.refresh_from_db()
    assert notification.status == Status.DELIVERED
    assert SmsPart.objects.get(message_id=part.message_id).state == ReceiptStatus.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_smpp_receipt_before_the_submit_resp_is_stored_then_matched(smpp_only, smpp, make_user):
    smpp.receipt_before_resp = True
    smpp.id_style = "uuid"
    notification = smpp_notification(make_user)
    send(notification)
    wait_for_status(notification, Status.DELIVERED, timeout=15)
    assert SmsPart.objects.filter(attempt__isnull=True).count() == 0


@pytest.mark.django_db(transaction=True)
def test_smpp_without_a_handler_leaves_receipts_for_redelivery(
    sms_settings, smpp, make_user, monkeypatch
):
    """A process that does not handle receipts (``check_channels``' probe, say) must not
    acknowledge them, or they are lost."""
    monkeypatch.setattr(sms_smpp, "_deliver_handlers", [])
    sms_settings.NOTIFY_SMS_TRANSPORTS = ["smpp"]
    notification = smpp_notification(make_user, "Your code is 1234")
    send(notification)
    wait_for(lambda: smpp.deliveries, timeout=10, what="the receipt to be written")
    sms_smpp.close_sessions()
    assert smpp.acks == []


@pytest.mark.django_db(transaction=True)
def test_a_receipt_for_an_unknown_id_is_kept_until_the_give_up_age():
    receipts.record(
        receipts.Receipt("sms_smpp", "nobody-knows", ReceiptStatus.DELIVERED, "DELIVRD", "000")
    )
    part = SmsPart.objects.get(message_id="nobody-knows")
    assert part.attempt is None and part.state == ReceiptStatus.DELIVERED
    assert receipts.prune() == 0
    assert receipts.prune(timezone.now() + timedelta(hours=49)) == 1


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_consumer_binds_at_start_up_and_gets_the_receipts_stored_while_it_was_down(
    start_consumer, sms_env, smpp, make_user
):
    env = {**sms_env, "NOTIFY_SMS_TRANSPORTS": "smpp"}
    smpp.id_style = "uuid"
    smpp.receipt_style = "minimal"
    smpp.receipt_order = "shuffled"
    smpp.auto_receipts = False
    consumer = start_consumer(**env)
    user = make_user(phone=PHONE)
    notification = notification_create(user=user, message=CYRILLIC_200, channels=["sms"])
    wait_for_status(notification, Status.SENT)
    consumer.stop()
    wait_for(lambda: smpp.open_connections == 0, timeout=15, what="the consumer to unbind")

    assert smpp.send_receipts() == 0  # nobody bound: the SMSC stores them
    assert len(smpp.stored_receipts) == 3

    second = start_consumer(**env)  # no send: it binds at start-up for the receipts
    wait_for_status(notification, Status.DELIVERED)
    assert smpp.bind_counts["bind_transceiver"] == 2
    assert len(smpp.parts) == 3  # nothing sent again
    attempt = notification.attempts.get(outcome=DeliveryAttempt.Outcome.SUCCESS)
    assert attempt.receipt_status == ReceiptStatus.DELIVERED
    assert "Traceback" not in second.output()
