"""The SMS transports against fakes on 127.0.0.1: SMS Aero's gate, its SMTP gateway, SMPP."""

from __future__ import annotations

import gc
import logging
from decimal import Decimal

import pytest
import requests
from django.core.exceptions import ImproperlyConfigured
from smsaero import SmsAero

from notifications.channels import senders_for
from notifications.delivery import notification_deliver
from notifications.models import DeliveryAttempt, Notification, SmsDailyCount, UserContact
from notifications.senders import sms_api
from notifications.senders.base import DeliveryError, SkipChannel
from notifications.senders.sms import daily_limit_reason, daily_slot, segment_count
from notifications.senders.sms_api import SafeSmsAero, SmsAeroApiSender, classify_response
from notifications.senders.sms_smpp import SmppSender
from notifications.senders.sms_smtp import SmsAeroSmtpSender
from notifications.tests.conftest import wait_for
from notifications.tests.fakes.smsaero import FakeSmsAero

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


# --- order and configuration -----------------------------------------------------------------


def test_transports_follow_notify_sms_transports_at_call_time(settings):
    assert [s.transport for s in senders_for("sms")] == ["sms_api", "sms_smtp", "sms_smpp"]
    settings.NOTIFY_SMS_TRANSPORTS = ["smpp", "api"]
    assert [s.transport for s in senders_for("sms")] == ["sms_smpp", "sms_api"]
    settings.NOTIFY_SMS_TRANSPORTS = ["api", "fax"]
    with pytest.raises(ImproperlyConfigured, match="fax"):
        senders_for("sms")


def test_blank_settings_mean_not_configured(settings):
    assert [s.is_configured() for s in senders_for("sms")] == [False, False, False]


@pytest.mark.django_db
def test_no_phone_skips(make_user):
    contact = UserContact.objects.get(user=make_user())
    for sender in senders_for("sms"):
        with pytest.raises(SkipChannel, match="no phone number"):
            sender.recipient(contact)


# --- SMS Aero API ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_sends_over_https_and_keeps_id_cost_segments(sms_settings, smsaero, contact):
    result = SmsAeroApiSender().send(contact, notification_for(contact, CYRILLIC_200))

    [sent] = smsaero.sent
    assert sent["number"] == DIGITS
    assert sent["text"] == CYRILLIC_200
    assert sent["from"] == "NotifySvc"
    assert not sent["test"]
    assert result.provider_message_id == str(sent["id"])
    assert result.segments == 3  # 200 UCS2 characters: 67 + 67 + 66
    assert result.cost == Decimal(str(sent["cost"]))
    assert {(r["scheme"], r["credentials"]) for r in smsaero.requests} == {
        ("https", (smsaero.email, smsaero.api_key))
    }


@pytest.mark.django_db
def test_api_test_mode_uses_the_test_endpoint(sms_settings, smsaero, contact):
    sms_settings.SMSAERO_TEST_MODE = True
    SmsAeroApiSender().send(contact, notification_for(contact))
    assert smsaero.requests[-1]["path"] == "/v2/sms/testsend"
    assert smsaero.sent[-1]["test"]


@pytest.mark.django_db
def test_api_url_with_http_scheme_is_honoured(sms_settings, smsaero_http, contact):
    sms_settings.SMSAERO_API_URL = smsaero_http.url  # http:// chosen by the operator
    SmsAeroApiSender().send(contact, notification_for(contact))
    assert [r["scheme"] for r in smsaero_http.requests] == ["http"]
    assert len(smsaero_http.sent) == 1


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
        SmsAeroApiSender().send(contact, notification_for(contact))

    assert not caught.value.permanent
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
        SmsAeroApiSender().send(contact, notification_for(contact))
    assert caught.value.permanent is permanent
    assert not caught.value.rate_limited
    assert text in caught.value.message


@pytest.mark.django_db
def test_api_wrong_key_is_a_configuration_error_and_redacted(sms_settings, smsaero, contact):
    sms_settings.SMSAERO_API_KEY = "wrong-key-0123456789abcdef"
    with pytest.raises(DeliveryError) as caught:
        SmsAeroApiSender().check()
    assert "configuration error" in caught.value.message
    assert not caught.value.permanent
    assert "wrong-key-0123456789abcdef" not in caught.value.message


@pytest.mark.django_db
def test_api_read_timeout_is_transient_and_tries_no_other_gate(sms_settings, contact, monkeypatch):
    calls = []

    def post(url, **kwargs):
        calls.append(url)
        raise requests.ReadTimeout("read timed out")

    monkeypatch.setattr(sms_api.http_session(), "post", post)
    sms_settings.SMSAERO_API_URL = ""
    with pytest.raises(DeliveryError, match="did not answer in time") as caught:
        SmsAeroApiSender().send(contact, notification_for(contact))
    assert not caught.value.permanent
    assert len(calls) == 1  # it may have been accepted: no second gate, no double charge
    assert calls[0].startswith("https://gate.smsaero.ru/v2/")


def test_classify_response():
    assert classify_response(200, {"success": True, "data": {"id": 1}}) == {"id": 1}
    with pytest.raises(DeliveryError) as caught:
        classify_response(429, {"success": False, "message": "Too many requests"})
    assert caught.value.rate_limited


@pytest.mark.django_db
def test_api_check_reports_auth_and_balance(sms_settings, smsaero):
    assert SmsAeroApiSender().check() == "SMS Aero accepts the credentials, balance 337.03"
    assert [r["path"] for r in smsaero.requests] == ["/v2/auth", "/v2/balance"]
    assert smsaero.sent == []


# --- SMTP gateway ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_smtp_gateway_mails_the_number_with_its_own_login(sms_settings, sms_smtp, smtp, contact):
    result = SmsAeroSmtpSender().send(contact, notification_for(contact, "Привет"))
    [mail] = sms_smtp.received
    assert mail.rcpt_tos == [f"{DIGITS}@smsaero.ru"]
    assert mail.mail_from == "owner@example.com"
    assert mail.body.strip() == "Привет"
    assert result.provider_message_id == mail.message["Message-ID"]
    assert result.segments == 1
    assert smtp.received == []  # the Email channel's server is not involved


@pytest.mark.django_db
def test_smtp_gateway_refusing_the_number_is_permanent(sms_settings, sms_smtp, contact):
    sms_smtp.handler.refuse_permanently.add(f"{DIGITS}@smsaero.ru")
    with pytest.raises(DeliveryError) as caught:
        SmsAeroSmtpSender().send(contact, notification_for(contact))
    assert caught.value.permanent
    assert "550" in caught.value.message


@pytest.mark.django_db
def test_smtp_gateway_wrong_password_is_transient_and_redacted(sms_settings, sms_smtp):
    sms_settings.SMS_SMTP_PASSWORD = "not-the-password"
    with pytest.raises(DeliveryError) as caught:
        SmsAeroSmtpSender().check()
    assert "refused the login" in caught.value.message
    assert not caught.value.permanent
    assert "not-the-password" not in caught.value.message
    sms_settings.SMS_SMTP_PASSWORD = sms_smtp.password
    assert "accepts the login" in SmsAeroSmtpSender().check()
    assert sms_smtp.received == []


# --- SMPP --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_smpp_sends_long_cyrillic_as_concatenated_ucs2(sms_settings, smpp, contact):
    result = SmppSender().send(contact, notification_for(contact, CYRILLIC_200))

    assert len(CYRILLIC_200) == 200
    assert smpp.messages() == [(DIGITS, CYRILLIC_200)]
    assert len(smpp.parts) == 3
    assert {p.data_coding for p in smpp.parts} == {0x08}  # UCS2
    assert all(p.esm_class & 0x40 for p in smpp.parts)  # UDH present
    assert all(len(p.short_message) <= 140 for p in smpp.parts)
    assert {p.source for p in smpp.parts} == {"NotifySvc"}
    assert result.segments == 3
    assert result.provider_message_id == "smsc-1,smsc-2,smsc-3"
    assert smpp.unbinds == 1
    wait_for(lambda: smpp.open_connections == 0, timeout=5, what="the socket to be closed")


@pytest.mark.django_db
def test_smpp_short_latin_text_is_one_gsm_part(sms_settings, smpp, contact):
    SmppSender().send(contact, notification_for(contact, "Your code is 1234"))
    [part] = smpp.parts
    assert (part.data_coding, part.esm_class) == (0, 0)
    assert smpp.messages() == [(DIGITS, "Your code is 1234")]


@pytest.mark.django_db
def test_smpp_wrong_password_is_a_transient_configuration_error(sms_settings, smpp, contact):
    sms_settings.SMPP_PASSWORD = "wrongpw"
    with pytest.raises(DeliveryError) as caught:
        SmppSender().send(contact, notification_for(contact))
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
        SmppSender().send(contact, notification_for(contact))
    assert caught.value.rate_limited
    assert caught.value.retry_after > 0
    assert smpp.unbinds == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("behaviour", "permanent"), [("invalid", True), ("syserr", False)])
def test_smpp_submit_errors_are_classified(sms_settings, smpp, contact, behaviour, permanent):
    smpp.mode = behaviour
    with pytest.raises(DeliveryError) as caught:
        SmppSender().send(contact, notification_for(contact))
    assert caught.value.permanent is permanent
    assert not caught.value.rate_limited


@pytest.mark.django_db
def test_smpp_silent_server_times_out(sms_settings, smpp, contact):
    sms_settings.SMPP_TIMEOUT = 0.5
    smpp.mode = "silent"
    with pytest.raises(DeliveryError, match="did not answer submit_sm in time") as caught:
        SmppSender().send(contact, notification_for(contact))
    assert not caught.value.permanent


@pytest.mark.django_db
def test_smpp_unreachable_closes_its_socket(sms_settings, contact, caplog):
    sms_settings.SMPP_PORT = 9  # discard: nothing listens on 127.0.0.1:9
    with caplog.at_level(logging.WARNING, logger="smpplib"):
        with pytest.raises(DeliveryError, match="unreachable") as caught:
            SmppSender().send(contact, notification_for(contact))
        gc.collect()
    assert not caught.value.permanent
    assert "was not closed" not in caplog.text
    assert "bound state" not in caplog.text


@pytest.mark.django_db
def test_smpp_check_binds_and_unbinds_without_sending(sms_settings, smpp):
    assert "accepts the bind" in SmppSender().check()
    assert smpp.binds == [("smppuser", True)]
    assert smpp.unbinds == 1
    assert smpp.parts == []


# --- money -------------------------------------------------------------------------------------


def test_segment_count():
    assert segment_count("a" * 160) == 1
    assert segment_count("a" * 161) == 2
    assert segment_count("я" * 70) == 1
    assert segment_count("я" * 71) == 2


@pytest.mark.django_db
def test_daily_limit_slots(settings):
    settings.NOTIFY_SMS_DAILY_LIMIT = 2
    with daily_slot():
        pass
    with pytest.raises(RuntimeError), daily_slot():
        raise RuntimeError("send failed")  # a failed send gives its slot back
    assert daily_limit_reason() == ""
    with daily_slot():
        pass
    assert "daily SMS limit reached: 2 of 2" in daily_limit_reason()
    with pytest.raises(DeliveryError, match="daily SMS limit") as caught, daily_slot():
        pass
    assert caught.value.permanent
    assert SmsDailyCount.objects.get().sent == 2
    settings.NOTIFY_SMS_DAILY_LIMIT = None
    assert daily_limit_reason() == ""


# --- the SMS chain through the delivery loop ---------------------------------------------------


def deliver(contact, message: str = "Ваш код 1234") -> Notification:
    notification = Notification.objects.create(
        user=contact.user, message=message, status=Notification.Status.QUEUED
    )
    notification_deliver(notification_id=notification.pk)
    notification.refresh_from_db()
    return notification


def transports(notification: Notification) -> list[tuple[str, str]]:
    return list(notification.attempts.values_list("transport", "outcome"))


@pytest.mark.django_db
def test_api_delivers_first(sms_settings, smsaero, sms_smtp, smpp, contact):
    notification = deliver(contact)
    assert (notification.status, notification.channel) == ("sent", "sms")
    assert transports(notification)[-1] == ("sms_api", Outcome.SUCCESS)
    attempt = notification.attempts.get(transport="sms_api")
    assert attempt.cost == Decimal("5.49") and attempt.segments == 1
    assert attempt.provider_message_id == str(smsaero.sent[0]["id"])
    assert sms_smtp.received == [] and smpp.parts == []


@pytest.mark.django_db
def test_api_outage_falls_through_to_smtp(sms_settings, smsaero, sms_smtp, smpp, contact):
    sms_settings.SMSAERO_API_URL = "https://127.0.0.1:9/v2/"  # nothing listens there
    notification = deliver(contact)
    assert notification.status == "sent"
    assert transports(notification)[-2:] == [
        ("sms_api", Outcome.TRANSIENT),
        ("sms_smtp", Outcome.SUCCESS),
    ]
    assert [m.rcpt_tos for m in sms_smtp.received] == [[f"{DIGITS}@smsaero.ru"]]
    assert smpp.parts == []


@pytest.mark.django_db
def test_api_and_smtp_outage_falls_through_to_smpp(sms_settings, smsaero, sms_smtp, smpp, contact):
    smsaero.mode = "500"
    sms_smtp.handler.refuse_temporarily.add(f"{DIGITS}@smsaero.ru")
    notification = deliver(contact)
    assert notification.status == "sent"
    assert transports(notification)[-3:] == [
        ("sms_api", Outcome.TRANSIENT),
        ("sms_smtp", Outcome.TRANSIENT),
        ("sms_smpp", Outcome.SUCCESS),
    ]
    assert smpp.messages() == [(DIGITS, "Ваш код 1234")]
    assert notification.attempts.get(transport="sms_smpp").segments == 1


@pytest.mark.django_db
def test_invalid_number_stops_the_channel_after_the_first_transport(
    sms_settings, smsaero, sms_smtp, smpp, contact
):
    smsaero.per_number[DIGITS] = "invalid_number"
    notification = deliver(contact)
    assert notification.status == "failed"
    assert [t for t in transports(notification) if t[0].startswith("sms_")] == [
        ("sms_api", Outcome.PERMANENT)
    ]
    assert sms_smtp.received == [] and smpp.parts == []  # not paid for twice
    assert "invalid number" in notification.last_error


@pytest.mark.django_db
def test_daily_limit_skips_sms_with_a_reason(sms_settings, smsaero, contact):
    sms_settings.NOTIFY_SMS_DAILY_LIMIT = 1
    assert deliver(contact).status == "sent"
    second = deliver(contact)
    assert second.status == "failed"
    sms_attempt = second.attempts.get(channel="sms")
    assert sms_attempt.outcome == Outcome.SKIPPED
    assert "daily SMS limit reached: 1 of 1" in sms_attempt.error
    assert len(smsaero.sent) == 1


@pytest.mark.django_db
def test_failed_sends_do_not_use_up_the_daily_limit(sms_settings, smsaero, sms_smtp, contact):
    sms_settings.NOTIFY_SMS_DAILY_LIMIT = 1
    sms_settings.NOTIFY_SMS_TRANSPORTS = ["api"]
    smsaero.mode = "reject"
    assert deliver(contact).status == "failed"
    smsaero.mode = "ok"
    assert deliver(contact).status == "sent"
    assert SmsDailyCount.objects.get().sent == 1


def test_fake_gate_answers_without_credentials_with_401():
    fake = FakeSmsAero()
    assert fake.answer("/v2/balance", None, {})[0] == 401


# --- operators: check_channels and the admin ---------------------------------------------------


@pytest.mark.django_db
def test_check_channels_reports_the_three_sms_transports_without_sending(
    sms_settings, smsaero, sms_smtp, smpp
):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("check_channels", stdout=out)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("sms")]
    assert lines == [
        "sms/sms_api: configured, SMS Aero accepts the credentials, balance 337.03",
        "sms/sms_smtp: configured, SMS SMTP gateway 127.0.0.1 answers and accepts the login",
        f"sms/sms_smpp: configured, SMPP server 127.0.0.1:{smpp.port} accepts the bind "
        "as 'smppuser' (then unbound)",
    ]
    assert smsaero.sent == [] and sms_smtp.received == [] and smpp.parts == []


@pytest.mark.django_db
def test_admin_shows_sms_count_and_cost_today(admin_client, admin_user, settings):
    from django.utils import timezone

    settings.NOTIFY_SMS_DAILY_LIMIT = 50
    for cost in ("5.49", "10.98"):
        notification = Notification.objects.create(user=admin_user, message="x", status="sent")
        DeliveryAttempt.objects.create(
            notification=notification,
            channel="sms",
            transport="sms_api",
            outcome=Outcome.SUCCESS,
            started_at=timezone.now(),
            cost=Decimal(cost),
            segments=1,
        )
    page = admin_client.get("/admin/notifications/notification/").content.decode()
    assert "SMS today: 2 sent (2 parts), cost 16.47; daily limit 50" in page
