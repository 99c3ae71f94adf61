"""The SMS transports against fakes on 127.0.0.1: SMS Aero's gate, an email-to-SMS gateway,
an SMSC (SMPP); the text's encoding and parts; the daily cap. The SMS chain is in
test_delivery.py."""

from __future__ import annotations

import gc
import logging

import pytest
import urllib3.exceptions as u3
from smsaero import SmsAero

from notifications.channels import senders_for
from notifications.models import DeliveryAttempt, Notification, SmsDailyCount, UserContact
from notifications.senders import http, sms_api, sms_smpp
from notifications.senders.base import ConfigurationError, DeliveryError, SkipChannel
from notifications.senders.sms import (
    GSM_BASIC,
    DailyLimitReached,
    daily_limit_reason,
    give_back_daily_slot,
    segment_count,
    sms_encoding,
    take_daily_slot,
)
from notifications.senders.sms_api import SafeSmsAero, SmsAeroApiSender, classify
from notifications.senders.sms_smpp import SmppSender, session
from notifications.senders.sms_smtp import SmsSmtpSender
from notifications.tests.fakes.smsaero import FakeSmsAero
from notifications.tests.fixtures import send_with, wait_for

Outcome = DeliveryAttempt.Outcome
PHONE = "+79161234567"
DIGITS = "79161234567"
CYRILLIC_200 = ("Съешь же ещё этих мягких французских булок, да выпей чаю. " * 4)[:200]


def configure(settings, env: dict[str, str]) -> None:
    """Apply ``sms_env`` (environment variables) to Django settings, typed."""
    for key, value in env.items():
        if key == "REQUESTS_CA_BUNDLE":
            continue  # the smsaero fixture sets it in the environment
        if key.endswith("_PORT"):
            value = int(value)
        elif key == "SMPP_TIMEOUT":
            value = float(value)
        setattr(settings, key, value)


@pytest.fixture
def sms_settings(settings, sms_env):
    configure(settings, sms_env)
    settings.NOTIFY_HTTP_TIMEOUT = 2.0
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.EMAIL_HOST = ""
    return settings


@pytest.fixture
def contact(make_user):
    return UserContact.objects.get(user=make_user(phone=PHONE))


def notification_for(contact, message: str = "Код: 1234") -> Notification:
    return Notification(user=contact.user, message=message)


def send(sender, contact, message: str = "Код: 1234"):
    return send_with(sender, notification_for(contact, message), contact)


# --- order and configuration -----------------------------------------------------------------


def test_transports_follow_notify_sms_transports_at_call_time(settings):
    assert [s.transport for s in senders_for("sms")] == ["sms_api", "sms_smtp", "sms_smpp"]
    settings.NOTIFY_SMS_TRANSPORTS = ["smpp", "api"]
    assert [s.transport for s in senders_for("sms")] == ["sms_smpp", "sms_api"]


def test_blank_settings_mean_not_configured(settings):
    assert [s.is_configured() for s in senders_for("sms")] == [False, False, False]


@pytest.mark.django_db
def test_no_phone_skips(make_user):
    contact = UserContact.objects.get(user=make_user())
    for sender in senders_for("sms"):
        with pytest.raises(SkipChannel, match="no phone number"):
            sender.address(contact)


# --- SMS Aero API ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_sends_over_https_and_keeps_id_and_cost(sms_settings, smsaero, contact):
    prepared = SmsAeroApiSender().prepare(notification_for(contact, CYRILLIC_200), contact)
    (result,) = send(SmsAeroApiSender(), contact, CYRILLIC_200)
    [request] = [r for r in smsaero.requests if r["path"] == "/v2/sms/send"]
    assert request["scheme"] == "https"
    assert request["credentials"] == (smsaero.email, smsaero.api_key)
    assert request["body"]["number"] == int(DIGITS)
    assert request["body"]["text"] == CYRILLIC_200
    assert request["body"]["sign"] == "NotifySvc"
    assert result.provider_message_id == str(smsaero.sent[0]["id"])
    assert str(result.cost) == "16.47"
    assert prepared.segments == 3


@pytest.mark.django_db
def test_api_test_mode_uses_the_test_endpoint(sms_settings, smsaero, contact):
    sms_settings.SMSAERO_TEST_MODE = True
    send(SmsAeroApiSender(), contact)
    assert [r["path"] for r in smsaero.requests] == ["/v2/sms/testsend"]
    assert smsaero.sent[0]["test"] is True


@pytest.mark.django_db
def test_api_url_with_http_scheme_is_honoured(sms_settings, smsaero_http, contact):
    sms_settings.SMSAERO_API_URL = smsaero_http.url
    send(SmsAeroApiSender(), contact)
    assert [r["scheme"] for r in smsaero_http.requests] == ["http"]


@pytest.mark.django_db
def test_no_plain_http_credentials_after_an_ssl_error(
    sms_settings, smsaero, smsaero_http, contact, monkeypatch
):
    # The gates: an HTTPS one whose certificate is not trusted (SSL error), then one that
    # speaks plain HTTP. The stock client answers an SSL error by retrying the next gate
    # over http:// with the email and API key in the URL; ours must not.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.setattr(
        sms_api,
        "BUILT_IN_GATES",
        (f"https://127.0.0.1:{smsaero.port}/v2/", f"https://127.0.0.1:{smsaero_http.port}/v2/"),
    )
    sms_settings.SMSAERO_API_URL = ""

    with pytest.raises(DeliveryError) as caught:
        send(SmsAeroApiSender(), contact)

    assert not caught.value.permanent and not caught.value.ambiguous
    assert "unreachable" in caught.value.message
    assert smsaero.requests == []  # the TLS handshake failed: nothing was said
    assert smsaero_http.requests == []  # and nothing went over plain HTTP
    assert smsaero.api_key not in caught.value.message

    # The defect is real in the stock client, with the same two gates:
    # (its constructor's DNS check of the email is switched off for this demonstration only)
    monkeypatch.setattr(SmsAero, "init_validate", staticmethod(lambda *a, **k: None))
    stock = SmsAero(email=smsaero.email, api_key=smsaero.api_key)
    monkeypatch.setattr(
        SmsAero,
        "GATE_URLS",
        [f"@127.0.0.1:{smsaero.port}/v2/", f"@127.0.0.1:{smsaero_http.port}/v2/"],
    )
    stock.balance()
    assert [(r["scheme"], r["credentials"]) for r in smsaero_http.requests] == [
        ("http", (smsaero.email, smsaero.api_key))
    ]


def test_client_construction_does_no_dns(monkeypatch):
    import dns.resolver

    def no_dns(*args, **kwargs):
        raise AssertionError("DNS was queried")

    monkeypatch.setattr(dns.resolver.Resolver, "resolve", no_dns)
    monkeypatch.setattr(dns.resolver, "resolve", no_dns)
    client = SafeSmsAero(
        email="owner@sms-owner-domain-that-does-not-resolve.com",
        api_key="k" * 30,
        signature="NotifySvc",
        base_urls=("https://127.0.0.1:9/v2",),
        timeout=1.0,
    )
    assert client.base_urls == ("https://127.0.0.1:9/v2/",)
    with pytest.raises(ValueError):
        SafeSmsAero(
            email="not an email",
            api_key="k" * 30,
            signature="NotifySvc",
            base_urls=("https://127.0.0.1:9/v2/",),
            timeout=1.0,
        )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("behaviour", "permanent", "text"),
    [
        ("reject", True, "rejected"),
        ("invalid_number", True, "invalid number"),
        ("no_credits", False, "no credits"),
        ("500", False, "HTTP 500"),
    ],
)
def test_api_errors_are_classified(sms_settings, smsaero, contact, behaviour, permanent, text):
    smsaero.mode = behaviour
    with pytest.raises(DeliveryError) as caught:
        send(SmsAeroApiSender(), contact)
    assert caught.value.permanent is permanent
    assert not caught.value.rate_limited and not caught.value.ambiguous
    assert text in caught.value.message


@pytest.mark.django_db
def test_api_wrong_key_is_a_configuration_error_and_redacted(sms_settings, smsaero, contact):
    sms_settings.SMSAERO_API_KEY = "wrong-key-0123456789abcdef"
    with pytest.raises(ConfigurationError) as caught:
        SmsAeroApiSender().check()
    assert "configuration error" in caught.value.message
    assert not caught.value.permanent
    assert "wrong-key-0123456789abcdef" not in caught.value.message


@pytest.mark.django_db
def test_api_read_timeout_is_ambiguous_and_tries_no_other_gate(sms_settings, contact, monkeypatch):
    calls = []

    def post(url, *args, **kwargs):
        calls.append(url)
        raise u3.ReadTimeoutError(None, url, "read timed out")

    monkeypatch.setattr(http, "send_request", post)
    sms_settings.SMSAERO_API_URL = ""
    with pytest.raises(DeliveryError, match="did not answer in") as caught:
        send(SmsAeroApiSender(), contact)
    assert caught.value.ambiguous and not caught.value.permanent
    assert len(calls) == 1  # it may have been accepted: no second gate, no double charge
    assert calls[0].startswith("https://gate.smsaero.ru/v2/")


@pytest.mark.django_db
def test_api_gate_that_took_the_message_but_answered_late_is_ambiguous(
    sms_settings, smsaero, contact
):
    sms_settings.NOTIFY_HTTP_TIMEOUT = 0.5
    smsaero.mode, smsaero.hang = "timeout", 1.0  # records the SMS, answers after the timeout
    with pytest.raises(DeliveryError) as caught:
        send(SmsAeroApiSender(), contact)
    assert caught.value.ambiguous
    wait_for(lambda: len(smsaero.sent) == 1, timeout=5, what="the gate to record the SMS")


def test_classify():
    assert classify(http.HttpAnswer(200, {"success": True, "data": {"id": 1}})) == {"id": 1}
    with pytest.raises(DeliveryError) as caught:
        classify(http.HttpAnswer(429, {"success": False, "message": "Too many requests"}))
    assert caught.value.rate_limited
    with pytest.raises(DeliveryError) as caught:
        classify(http.HttpAnswer(504, {"_not_json": "HTTP 504, not a SMS Aero answer"}))
    assert caught.value.ambiguous


@pytest.mark.django_db
@pytest.mark.parametrize("length", [1, 641])
def test_api_text_outside_2_to_640_characters_is_refused_before_calling(
    sms_settings, smsaero, contact, length
):
    """SMS Aero takes 2–640 characters. Outside that the API is not called at all, and the
    refusal is this transport's only, so the next SMS transport can still take it."""
    with pytest.raises(DeliveryError) as caught:
        SmsAeroApiSender().prepare(notification_for(contact, "я" * length), contact)
    assert caught.value.permanent and caught.value.transport_only
    assert "SMS Aero takes 2–640 characters" in caught.value.message
    assert smsaero.requests == []


@pytest.mark.django_db
def test_api_check_reports_auth_and_balance(sms_settings, smsaero):
    assert SmsAeroApiSender().check() == "SMS Aero accepts the credentials, balance 337.03"
    assert [r["path"] for r in smsaero.requests] == ["/v2/auth", "/v2/balance"]
    assert smsaero.sent == []


# --- email-to-SMS gateway ----------------------------------------------------------------------


@pytest.mark.django_db
def test_smtp_gateway_mails_the_number_with_its_own_login(sms_settings, sms_smtp, smtp, contact):
    (result,) = send(SmsSmtpSender(), contact, "Привет")
    [mail] = sms_smtp.received
    assert mail.rcpt_tos == [f"{DIGITS}@sms.example.net"]
    assert mail.mail_from == "owner@example.com"
    assert mail.message["Subject"] == "NotifySvc"
    assert mail.body.strip() == "Привет"
    assert result.provider_message_id == mail.message["Message-ID"]
    assert smtp.received == []  # the Email channel's server is not involved


@pytest.mark.django_db
def test_smtp_gateway_address_and_subject_follow_their_templates(sms_settings, sms_smtp, contact):
    sms_settings.SMS_SMTP_ADDRESS = "sms+{phone}@gw.example.org"
    sms_settings.SMS_SMTP_SUBJECT = ""
    send(SmsSmtpSender(), contact, "hi")
    [mail] = sms_smtp.received
    assert mail.rcpt_tos == [f"sms+{PHONE}@gw.example.org"]
    assert mail.message["Subject"] == ""


@pytest.mark.django_db
def test_smtp_gateway_refusing_the_recipient_hands_over_to_the_next_transport(
    sms_settings, sms_smtp, contact
):
    """A 5xx at RCPT is the gateway's refusal, not proof the number is wrong: permanent for
    this transport only."""
    sms_smtp.handler.refuse_permanently.add(f"{DIGITS}@sms.example.net")
    with pytest.raises(DeliveryError) as caught:
        send(SmsSmtpSender(), contact)
    assert caught.value.permanent and caught.value.transport_only
    assert "550" in caught.value.message


@pytest.mark.django_db
def test_smtp_gateway_wrong_password_is_a_configuration_error_and_redacted(sms_settings, sms_smtp):
    sms_settings.SMS_SMTP_PASSWORD = "not-the-password"
    with pytest.raises(ConfigurationError) as caught:
        SmsSmtpSender().check()
    assert "refused the login" in caught.value.message
    assert not caught.value.permanent
    assert "not-the-password" not in caught.value.message
    sms_settings.SMS_SMTP_PASSWORD = sms_smtp.password
    assert "accepts the login" in SmsSmtpSender().check()
    assert sms_smtp.received == []


@pytest.mark.django_db
def test_smtp_gateway_text_over_255_parts_fails_before_anything_is_mailed(
    sms_settings, sms_smtp, contact
):
    """Counting the parts used to happen after the gateway had taken the mail."""
    sms_settings.NOTIFY_MESSAGE_MAX_LENGTH = 50_000
    text = "я" * (255 * 67 + 1)
    with pytest.raises(DeliveryError) as caught:
        SmsSmtpSender().prepare(notification_for(contact, text), contact)
    assert caught.value.permanent and caught.value.transport_only
    assert "256 SMS parts" in caught.value.message
    assert sms_smtp.received == []


@pytest.mark.django_db
def test_smtp_gateway_keeps_its_connection_between_messages(sms_settings, sms_smtp, contact):
    sender = SmsSmtpSender()
    for _ in range(5):
        send(sender, contact)
    assert len(sms_smtp.received) == 5
    assert sms_smtp.sessions == 1


# --- SMPP --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_smpp_sends_long_cyrillic_as_concatenated_ucs2(sms_settings, smpp, contact):
    results = send(SmppSender(), contact, CYRILLIC_200)

    assert len(CYRILLIC_200) == 200
    assert smpp.messages() == [(DIGITS, CYRILLIC_200)]
    assert len(smpp.parts) == 3
    assert {p.data_coding for p in smpp.parts} == {0x08}  # UCS2
    assert all(p.esm_class & 0x40 for p in smpp.parts)  # UDH present
    assert all(len(p.short_message) <= 140 for p in smpp.parts)
    assert {p.source for p in smpp.parts} == {"NotifySvc"}
    assert [r.provider_message_id for r in results] == ["smsc-1", "smsc-2", "smsc-3"]


@pytest.mark.django_db
def test_smpp_short_latin_text_is_one_gsm_part(sms_settings, smpp, contact):
    send(SmppSender(), contact, "Your code is 1234")
    [part] = smpp.parts
    assert (part.data_coding, part.esm_class) == (0, 0)
    assert smpp.messages() == [(DIGITS, "Your code is 1234")]


@pytest.mark.django_db
def test_smpp_keeps_one_bound_transceiver_session(sms_settings, smpp, contact):
    """Connect and bind once; every later SMS goes over the same session."""
    for i in range(5):
        send(SmppSender(), contact, f"code {i}")
    assert [m[1] for m in smpp.messages()] == [f"code {i}" for i in range(5)]
    assert smpp.binds == [("smppuser", True)]
    assert smpp.connections == 1
    unbinds = smpp.unbinds  # an earlier test's session may still be saying goodbye
    session().close()
    wait_for(lambda: smpp.unbinds == unbinds + 1, timeout=5, what="the unbind")


@pytest.mark.django_db
def test_smpp_receipts_stored_at_the_smsc_arrive_with_the_bind_and_are_acknowledged(
    sms_settings, smpp, contact, monkeypatch
):
    """The SMSC writes stored receipts right behind the bind response, often in the same
    packet: none may be lost, and each is acknowledged once its handler has it."""
    received = []
    monkeypatch.setattr(sms_smpp, "_deliver_handlers", [received.append])
    smpp.auto_receipts = False
    for text in ("one", "two", "three"):
        send(SmppSender(), contact, text)
    session().close()
    wait_for(lambda: smpp.open_connections == 0, timeout=5, what="the unbind")
    assert smpp.send_receipts() == 0  # nobody bound: stored
    session().open()
    wait_for(lambda: len(smpp.acks) == 3, timeout=5, what="three acknowledged receipts")
    assert sorted(pdu.receipted_message_id for pdu in received) == sorted(
        part.message_id.encode() for part in smpp.parts
    )


@pytest.mark.django_db
def test_smpp_a_failing_handler_leaves_the_receipt_for_redelivery(
    sms_settings, smpp, contact, monkeypatch
):
    calls = []

    def broken(pdu) -> None:
        calls.append(pdu)
        raise RuntimeError("database down")

    monkeypatch.setattr(sms_smpp, "_deliver_handlers", [broken])
    send(SmppSender(), contact, "one")
    wait_for(lambda: calls, timeout=5, what="the handler to be called")
    smpp.send_enquire_link()  # a round trip after it: an acknowledgement would be there
    wait_for(lambda: smpp.enquire_link_resps == 1, timeout=5, what="the enquire_link_resp")
    assert smpp.acks == []


@pytest.mark.django_db
def test_smpp_session_the_smsc_dropped_is_reopened_by_the_next_send(sms_settings, smpp, contact):
    send(SmppSender(), contact, "one")
    session()._socket.shutdown(2)  # the SMSC side goes away
    wait_for(lambda: not session().bound, timeout=5, what="the session to notice")
    send(SmppSender(), contact, "two")
    assert [m[1] for m in smpp.messages()] == ["one", "two"]
    assert len(smpp.binds) == 2


@pytest.mark.django_db
def test_smpp_wrong_password_is_a_configuration_error(sms_settings, smpp, contact):
    sms_settings.SMPP_PASSWORD = "wrongpw"
    with pytest.raises(ConfigurationError) as caught:
        send(SmppSender(), contact)
    assert not caught.value.permanent and not caught.value.rate_limited
    assert "Invalid Password" in caught.value.message
    assert "wrongpw" not in caught.value.message
    assert smpp.binds == [("smppuser", False)]
    assert smpp.parts == []
    wait_for(lambda: smpp.open_connections == 0, timeout=5, what="the socket to be closed")


@pytest.mark.django_db
def test_smpp_throttled_is_rate_limited(sms_settings, smpp, contact):
    smpp.mode = "throttled"
    with pytest.raises(DeliveryError) as caught:
        send(SmppSender(), contact)
    assert caught.value.rate_limited
    assert caught.value.retry_after > 0


@pytest.mark.django_db
@pytest.mark.parametrize(("behaviour", "permanent"), [("invalid", True), ("syserr", False)])
def test_smpp_submit_errors_are_classified(sms_settings, smpp, contact, behaviour, permanent):
    smpp.mode = behaviour
    with pytest.raises(DeliveryError) as caught:
        send(SmppSender(), contact)
    assert caught.value.permanent is permanent
    assert not caught.value.rate_limited and not caught.value.ambiguous


@pytest.mark.django_db
def test_smpp_silent_server_is_ambiguous(sms_settings, smpp, contact):
    """The submit_sm went out and no answer came: the SMSC may have taken it."""
    sms_settings.SMPP_TIMEOUT = 0.5
    smpp.mode = "silent"
    with pytest.raises(DeliveryError, match="did not answer submit_sm in") as caught:
        send(SmppSender(), contact)
    assert caught.value.ambiguous and not caught.value.permanent


@pytest.mark.django_db
def test_smpp_unreachable_is_not_ambiguous_and_closes_its_socket(sms_settings, contact, caplog):
    sms_settings.SMPP_PORT = 9  # discard: nothing listens on 127.0.0.1:9
    with caplog.at_level(logging.WARNING):
        with pytest.raises(DeliveryError, match="unreachable") as caught:
            send(SmppSender(), contact)
        gc.collect()
    assert not caught.value.permanent and not caught.value.ambiguous
    assert "was not closed" not in caplog.text


@pytest.mark.django_db
def test_smpp_check_binds_and_unbinds_without_sending(sms_settings, smpp):
    assert "accepts the bind" in SmppSender().check()
    assert smpp.binds == [("smppuser", True)]
    wait_for(lambda: smpp.unbinds == 1, timeout=5, what="the unbind")
    assert smpp.parts == []


@pytest.mark.django_db
def test_smpp_text_over_255_parts_is_refused_before_any_bind(sms_settings, smpp, contact):
    sms_settings.NOTIFY_MESSAGE_MAX_LENGTH = 50_000
    with pytest.raises(DeliveryError) as caught:
        SmppSender().prepare(notification_for(contact, "я" * (255 * 67 + 1)), contact)
    assert caught.value.permanent and caught.value.transport_only
    assert smpp.connections == 0


# --- the text's parts --------------------------------------------------------------------------


def test_segment_count():
    assert segment_count("a" * 160) == 1
    assert segment_count("a" * 161) == 2
    assert segment_count("a" * 306) == 2
    assert segment_count("a" * 307) == 3
    assert segment_count("я" * 70) == 1
    assert segment_count("я" * 71) == 2
    assert segment_count("€" * 80) == 1  # two septets each
    assert segment_count("€" * 81) == 2


def test_gsm_basic_table_has_128_characters():
    assert len(GSM_BASIC) == 128


def _septets(part: bytes) -> bytes:
    return part[6:]  # after the UDH


@pytest.mark.parametrize("char", list("€[]{}~^|\\"))
def test_gsm_escape_pairs_are_never_cut_across_parts(char):
    """An escaped character is two septets (0x1B and its code): both go in the same part."""
    text = "a" * 152 + char * 10  # the first escape pair starts at septet 153 of part 1
    encoding = sms_encoding(text, reference=7)
    assert len(encoding.parts) == 2
    first, second = (_septets(p) for p in encoding.parts)
    assert len(first) == 152 and not first.endswith(b"\x1b")
    assert second.startswith(b"\x1b")
    assert encoding.parts[0][:6] == bytes((5, 0, 3, 7, 2, 1))


def test_surrogate_pairs_are_never_cut_across_parts():
    text = "я" * 66 + "😀" * 5  # 66 + 10 UTF-16 units
    encoding = sms_encoding(text)
    decoded = [_septets(p).decode("utf-16-be") for p in encoding.parts]
    assert "".join(decoded) == text
    assert decoded[0] == "я" * 66  # the emoji would straddle the 67-unit boundary


# --- the daily cap -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_daily_limit_slots(settings):
    settings.NOTIFY_SMS_DAILY_LIMIT = 2
    take_daily_slot()
    day = take_daily_slot()
    give_back_daily_slot(day)  # a send the provider surely did not take
    assert daily_limit_reason() == ""
    take_daily_slot()
    assert "daily SMS limit reached: 2 of 2" in daily_limit_reason()
    with pytest.raises(DailyLimitReached, match="daily SMS limit") as caught:
        take_daily_slot()
    assert not caught.value.permanent  # the cap is ours, not the recipient's fault
    assert SmsDailyCount.objects.get().sent == 2
    settings.NOTIFY_SMS_DAILY_LIMIT = None
    assert daily_limit_reason() == ""


@pytest.mark.django_db
def test_a_refused_sms_gives_its_slot_back_an_ambiguous_one_keeps_it(
    sms_settings, smsaero, contact
):
    sms_settings.NOTIFY_SMS_DAILY_LIMIT = 10
    smsaero.mode = "reject"
    with pytest.raises(DeliveryError):
        send(SmsAeroApiSender(), contact)
    assert SmsDailyCount.objects.get().sent == 0
    sms_settings.NOTIFY_HTTP_TIMEOUT = 0.5
    smsaero.mode, smsaero.hang = "timeout", 1.0
    with pytest.raises(DeliveryError):
        send(SmsAeroApiSender(), contact)
    assert SmsDailyCount.objects.get().sent == 1  # it may have been paid for


def test_fake_gate_answers_without_credentials_with_401():
    fake = FakeSmsAero()
    assert fake.answer("/v2/balance", None, {})[0] == 401
