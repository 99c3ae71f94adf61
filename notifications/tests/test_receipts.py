"""Delivery receipts: SMS Aero by callback and by poll, SMPP deliver_sm from the fake SMSC
(UUID ids, minimal text, parts out of order, redelivered, before the submit_sm_resp, stored
while unbound, hex ids written in decimal, NUL-terminated text, not storable), ending the
notification delivered or undelivered."""

from __future__ import annotations

import random
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import DataError, OperationalError
from django.utils import timezone

from notifications import receipts
from notifications.delivery import deliver_now
from notifications.models import DeliveryAttempt, Notification, ReceiptStatus, SmsPart
from notifications.senders import sms_smpp
from notifications.services import notification_create, notifications_resend
from notifications.tests.fakes.server import post
from notifications.tests.fixtures import wait_for, wait_for_status
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


def test_smpp_receipt_text_with_nul_and_control_characters_is_cleaned():
    receipt = receipts.smpp_receipt(
        pdu(
            b"id:smsc-7\x00 sub:001 dlvrd:001 submit date:2611292301 done date:2611292302"
            b"\r\nstat:DELIVRD\x01 err:000\x00"
        )
    )
    assert (receipt.message_id, receipt.provider_status, receipt.error_code) == (
        "smsc-7",
        "DELIVRD",
        "000",
    )
    assert receipts.smpp_receipt(pdu(b"stat:DELIVRD", receipted_message_id=b"abc-1\x00")) == (
        receipts.Receipt("sms_smpp", "abc-1", ReceiptStatus.DELIVERED, "DELIVRD")
    )


def test_a_data_sm_receipt_is_read_from_its_message_payload():
    data_sm = SimpleNamespace(esm_class=0x04, message_payload=b"id:smsc-9 stat:UNDELIV err:005")
    receipt = receipts.smpp_receipt(data_sm)
    assert (receipt.message_id, receipt.state, receipt.error_code) == (
        "smsc-9",
        ReceiptStatus.UNDELIVERED,
        "005",
    )


def test_smpp_receipt_id_comes_from_the_tlv_before_the_text():
    """The TLV is the submit_sm_resp's id (SMPP 3.4); the text's form varies by SMSC."""
    receipt = receipts.smpp_receipt(
        pdu(b"id:0000006699 stat:DELIVRD err:000", receipted_message_id=b"00001A2B")
    )
    assert receipt.message_id == "00001A2B"


@pytest.mark.parametrize(
    ("receipted", "submitted"),
    [
        ("6699", "1A2B"),  # decimal in the receipt, hex in the submit_sm_resp
        ("0000006699", "00001A2B"),  # zero-padded, as SMSCs write them
        ("1a2b", "00001A2B"),  # hex in another case
        ("0042", "42"),
        ("48879", "beef"),
    ],
)
def test_smpp_ids_that_spell_one_number_match(receipted, submitted):
    assert receipts.message_key("sms_smpp", receipted) == receipts.message_key(
        "sms_smpp", submitted
    )


@pytest.mark.parametrize(
    ("receipted", "submitted"),
    [
        ("4660", "1234"),  # digits only on both sides: never read as hex
        ("6698", "1A2B"),
        ("smsc-01", "smsc-1"),
        ("SMSC-1", "smsc-1"),
        ("6f1c2a9e-3b7d-4c1e-9a55-0d2f7e8b1c43", "6f1c2a9e3b7d4c1e9a550d2f7e8b1c43"),
        ("G1", "1"),
    ],
)
def test_smpp_ids_that_are_not_one_number_never_match(receipted, submitted):
    assert receipts.message_key("sms_smpp", receipted) != receipts.message_key(
        "sms_smpp", submitted
    )


def test_sms_aero_ids_are_matched_as_they_are():
    assert receipts.message_key("sms_api", "0042") == "0042"


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


@pytest.mark.django_db(transaction=True)
def test_smsaero_callback_with_a_nul_in_its_id_is_refused_with_400(callbacks, live_server):
    url = f"{live_server.url}/sms/callback/{SECRET}/"
    as_json = {"Content-Type": "application/json"}
    assert post(url, b'{"id": "12\\u0000", "status": 1}', as_json) == 400
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert post(url, b"id=12%00&status=1", form) == 400
    assert post(url, b"id=" + b"7" * 256 + b"&status=1", form) == 400  # longer than it can store
    assert not SmsPart.objects.exists()


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


@pytest.mark.django_db(transaction=True)
def test_smpp_nul_terminated_receipt_text_settles_the_sms(smpp_only, smpp, make_user):
    smpp.receipt_style = "minimal"
    smpp.receipt_tlvs = False
    smpp.receipt_text_suffix = "\x00"
    notification = smpp_notification(make_user, "Your code is 1234")
    attempt = send(notification)
    wait_for_status(notification, Status.DELIVERED, timeout=15)
    part = SmsPart.objects.get(attempt=attempt)
    assert (part.message_id, part.provider_status, part.error_code) == (
        attempt.provider_message_id,
        "DELIVRD",
        "000",
    )
    wait_for(lambda: smpp.acks, timeout=10, what="the acknowledgement")
    assert smpp.acks == [(part.message_id, 0)]


@pytest.mark.django_db(transaction=True)
def test_smpp_receipt_that_cannot_be_stored_is_logged_and_acknowledged(
    smpp_only, smpp, make_user, monkeypatch, caplog
):
    def refused(receipt, now=None):
        raise DataError("value too long for type character varying(255)")

    monkeypatch.setattr(receipts, "record", refused)
    notification = smpp_notification(make_user, "Your code is 1234")
    send(notification)
    [part] = smpp.parts
    wait_for(lambda: smpp.acks, timeout=10, what="the acknowledgement")
    assert smpp.acks == [(part.message_id, 0)]  # the SMSC will not deliver it again
    assert "deliver_sm not stored; acknowledged" in caplog.text
    assert "value too long" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_smpp_receipt_met_by_a_database_outage_is_left_for_redelivery(
    smpp_only, smpp, make_user, monkeypatch
):
    calls = []

    def locked(receipt, now=None):
        calls.append(receipt)
        raise OperationalError("database is locked")

    monkeypatch.setattr(receipts, "record", locked)
    send(smpp_notification(make_user, "Your code is 1234"))
    wait_for(lambda: calls, timeout=10, what="the receipt to be handled")
    smpp.send_enquire_link()  # a round trip after it: an acknowledgement would be there
    wait_for(lambda: smpp.enquire_link_resps == 1, timeout=10, what="the enquire_link_resp")
    assert smpp.acks == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("tlvs", [True, False], ids=["tlv", "text-only"])
@pytest.mark.parametrize("before_resp", [False, True], ids=["after-resp", "before-resp"])
def test_smpp_hex_ids_match_receipts_that_write_them_in_decimal(
    smpp_only, smpp, make_user, tlvs, before_resp
):
    """The SMSC answers submit_sm with 00001A2B and writes id:0000006699 in the receipt."""
    smpp.id_style = "hex"
    smpp.receipt_id_style = "decimal"
    smpp.receipt_tlvs = tlvs
    smpp.receipt_before_resp = before_resp
    notification = smpp_notification(make_user)
    attempt = send(notification)

    wait_for_status(notification, Status.DELIVERED, timeout=15)
    assert attempt.provider_message_id == "00001A2B,00001A2C,00001A2D"
    assert {d.short_message.split()[0] for d in smpp.deliveries} == {
        b"id:0000006699",
        b"id:0000006700",
        b"id:0000006701",
    }
    parts = SmsPart.objects.filter(attempt=attempt).order_by("part")
    assert [(p.part, p.state) for p in parts] == [(n, "delivered") for n in (1, 2, 3)]
    assert not SmsPart.objects.filter(attempt__isnull=True).exists()  # none left unmatched
    wait_for(lambda: len(smpp.acks) == 3, timeout=10, what="every receipt acknowledged")


@pytest.mark.django_db(transaction=True)
def test_smpp_receipt_for_another_spelling_of_a_non_numeric_id_changes_nothing(
    smpp_only, smpp, make_user
):
    smpp.auto_receipts = False
    notification = smpp_notification(make_user, "Your code is 1234")
    attempt = send(notification)
    assert attempt.provider_message_id == "smsc-1"
    for other in ("SMSC-1", "smsc-01", "smsc-1 x"):
        receipts.record(receipts.Receipt("sms_smpp", other, ReceiptStatus.UNDELIVERED, "UNDELIV"))
    notification.refresh_from_db()
    assert notification.status == Status.SENT
    assert SmsPart.objects.get(attempt=attempt).state == ReceiptStatus.PENDING


@pytest.mark.django_db(transaction=True)
def test_smpp_part_stored_under_its_id_as_written_still_gets_its_receipt(
    smpp_only, smpp, make_user
):
    """A part written before SMPP ids had keys is under its id as sent: 00001A2B."""
    smpp.id_style = "hex"
    smpp.auto_receipts = False
    notification = smpp_notification(make_user, "Your code is 1234")
    attempt = send(notification)
    SmsPart.objects.filter(attempt=attempt).update(message_id="00001A2B")
    smpp.send_receipt("00001A2B")
    wait_for_status(notification, Status.DELIVERED, timeout=15)
    assert SmsPart.objects.get().attempt_id == attempt.pk  # no second part for the receipt
