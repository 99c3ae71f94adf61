"""The email sender: through the configured Django backend over a kept connection, with
SMTP answers classified, against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import smtplib
import socket

import pytest

from notifications.models import Notification, UserContact
from notifications.senders.base import ConfigurationError, DeliveryError
from notifications.senders.email import EmailSender, classify_mail_error
from notifications.tests.fakes.smtp import FakeSmtp
from notifications.tests.fixtures import send_with


@pytest.fixture
def email_settings(settings, smtp):
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp.port
    settings.EMAIL_USE_TLS = False
    settings.DEFAULT_FROM_EMAIL = "service@example.com"
    return settings


def contact(**fields) -> UserContact:
    return UserContact(**fields)


def note(message: str = "hello", subject: str = "") -> Notification:
    return Notification(message=message, subject=subject)


def send(sender: EmailSender, address: str, message: str = "hello", subject: str = ""):
    return send_with(sender, note(message, subject), contact(email=address))


def test_email_delivers_with_subject_and_message_id(email_settings, smtp):
    (result,) = send(EmailSender(), "ann@example.com", "Body text", "Subject line")
    (mail,) = smtp.received
    assert mail.rcpt_tos == ["ann@example.com"]
    assert mail.mail_from == "service@example.com"
    assert mail.message["Subject"] == "Subject line"
    assert result.provider_message_id == mail.message["Message-ID"]


def test_email_subject_defaults_to_setting(email_settings, smtp):
    email_settings.NOTIFY_EMAIL_SUBJECT = "From the shop"
    send(EmailSender(), "ann@example.com", "x")
    assert smtp.received[0].message["Subject"] == "From the shop"


@pytest.mark.parametrize(
    ("refusal", "permanent", "code"),
    [("refuse_permanently", True, "550"), ("refuse_temporarily", False, "451")],
)
def test_email_recipient_refusals_are_classified(email_settings, smtp, refusal, permanent, code):
    getattr(smtp.handler, refusal).add("bad@example.com")
    with pytest.raises(DeliveryError) as caught:
        send(EmailSender(), "bad@example.com")
    assert caught.value.permanent is permanent
    assert code in caught.value.message


def test_email_server_down_is_transient_and_not_ambiguous(settings):
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 9  # nothing listens on discard
    settings.EMAIL_TIMEOUT = 1
    with pytest.raises(DeliveryError) as caught:
        send(EmailSender(), "a@example.com")
    assert not caught.value.permanent and not caught.value.ambiguous
    assert "unreachable" in caught.value.message


def test_email_login_refused_is_configuration_error_without_password(settings):
    settings.EMAIL_HOST_PASSWORD = "gmail-app-pw-1234"
    err = classify_mail_error(
        smtplib.SMTPAuthenticationError(535, b"5.7.8 Username and Password not accepted"),
        "SMTP server smtp.gmail.com",
    )
    assert isinstance(err, ConfigurationError)
    assert err.message.startswith("configuration error")
    assert not err.permanent
    assert "gmail-app-pw-1234" not in err.message


def test_email_login_checked_by_check(settings):
    server = FakeSmtp(username="robot", password="right-pw").start()
    try:
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "robot", "right-pw"
        assert "accepts the login" in EmailSender().check()
        settings.EMAIL_HOST_PASSWORD = "wrong-pw"
        with pytest.raises(DeliveryError) as caught:
            EmailSender().check()
        assert "refused the login" in caught.value.message
        assert server.received == []
    finally:
        server.stop()


@pytest.mark.django_db
def test_email_falls_back_to_the_user_account_address(django_user_model):
    user = django_user_model.objects.create_user("uma", email="uma@example.com")
    assert EmailSender().address(user.contact) == "uma@example.com"
    user.contact.email = "work@example.com"
    assert EmailSender().address(user.contact) == "work@example.com"


@pytest.mark.parametrize("address", ["a@b.com, c@d.com", "bob@", "two words@example.com"])
def test_a_bad_account_address_is_refused_before_any_server_is_called(
    email_settings, smtp, address
):
    """A user's account email is not validated by Django; a bad one is a permanent error of
    the email channel, found before connecting, never an unexpected exception."""
    with pytest.raises(DeliveryError) as caught:
        EmailSender().prepare(note(), contact(email=address))
    assert caught.value.permanent
    assert "is not a valid email address" in caught.value.message
    assert smtp.received == []


def test_a_subject_with_a_line_break_fails_before_sending(email_settings, smtp):
    with pytest.raises(DeliveryError) as caught:
        EmailSender().prepare(note("x", "Hi\nBcc: victim@example.com"), contact(email="a@b.com"))
    assert caught.value.permanent
    assert smtp.received == []


def test_one_connection_carries_many_messages(email_settings, smtp):
    """Each worker thread keeps its connection: ten messages, one SMTP session."""
    sender = EmailSender()
    for i in range(10):
        send(sender, f"user{i}@example.com", f"message {i}")
    assert len(smtp.received) == 10
    assert smtp.sessions == 1


@pytest.mark.parametrize("check_idle", [0, 3600], ids=["found-by-noop", "found-by-sending"])
def test_a_connection_the_server_closed_is_replaced_once(email_settings, smtp, check_idle):
    """The server dropped the connection: the next message reconnects and goes out once,
    with no error: found by the NOOP check before use, or by MAIL FROM failing (nothing
    was sent yet, so sending again is safe)."""
    email_settings.NOTIFY_SMTP_CHECK_IDLE_SECONDS = check_idle
    sender = EmailSender()
    send(sender, "a@example.com", "first")
    # The connection dies, as when the server times an idle client out.
    sender.mailer.connection().backend.connection.sock.shutdown(socket.SHUT_RDWR)
    send(sender, "b@example.com", "second")
    assert [m.body.strip() for m in smtp.received] == ["first", "second"]
    assert smtp.sessions == 2


def test_a_server_capping_messages_per_connection_costs_no_message(email_settings, smtp):
    """Past its cap the server answers MAIL FROM with 421 and closes: nothing was sent, so
    the message goes out on a new connection, once."""
    smtp.handler.max_messages_per_session = 3
    sender = EmailSender()
    for i in range(7):
        send(sender, f"u{i}@example.com", f"message {i}")
    assert [m.body.strip() for m in smtp.received] == [f"message {i}" for i in range(7)]
    assert smtp.session_messages == [3, 3, 1]


def test_a_connection_is_renewed_after_the_configured_number_of_messages(email_settings, smtp):
    email_settings.NOTIFY_SMTP_MESSAGES_PER_CONNECTION = 3
    sender = EmailSender()
    for i in range(7):
        send(sender, f"u{i}@example.com")
    assert smtp.sessions == 3


def test_a_server_without_starttls_is_a_configuration_error(email_settings, smtp):
    """STARTTLS is on by default: a server that doesn't offer it is refused, with the
    setting to check named, rather than logging in over plain text."""
    email_settings.EMAIL_USE_TLS = True
    with pytest.raises(ConfigurationError) as caught:
        send(EmailSender(), "a@example.com")
    assert "EMAIL_USE_TLS" in caught.value.message
    assert smtp.received == []


def test_starttls_protects_the_login(settings, monkeypatch):
    """The default: STARTTLS on a plain connection, the server's certificate checked, then
    the login, then the message."""
    server = FakeSmtp(username="robot", password="right-pw", tls=True).start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_bundle))
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_USE_TLS = True
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "robot", "right-pw"
        settings.DEFAULT_FROM_EMAIL = "service@example.com"
        send(EmailSender(), "ann@example.com", "over TLS")
        assert [m.body.strip() for m in server.received] == ["over TLS"]
    finally:
        server.stop()


# --- any Django email backend: django-anymail (Postmark) -------------------------------------


@pytest.fixture
def postmark(settings):
    from notifications.tests.fakes.postmark import FakePostmark

    fake = FakePostmark().start()
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": fake.token, "POSTMARK_API_URL": fake.url}
    settings.DEFAULT_FROM_EMAIL = "service@example.com"
    yield fake
    fake.stop()


def test_email_goes_through_the_configured_backend(postmark, smtp):
    """EMAIL_BACKEND picks the provider: here django-anymail's Postmark backend, over its
    HTTP API, with the provider's message id kept."""
    sender = EmailSender()
    assert sender.is_configured()
    (result,) = send(sender, "ann@example.com", "Body text", "Subject line")
    (mail,) = postmark.sent
    assert (mail["To"], mail["Subject"], mail["TextBody"]) == (
        "ann@example.com",
        "Subject line",
        "Body text",
    )
    assert result.provider_message_id == mail["MessageID"]
    assert smtp.received == []


@pytest.mark.parametrize(
    ("behaviour", "kind"),
    [("inactive", "permanent"), ("500", "transient"), ("429", "rate limited")],
)
def test_the_providers_errors_map_like_smtps(postmark, behaviour, kind):
    """A recipient the provider refuses is permanent (next channel, like SMTP 5xx); its 5xx
    is transient (like SMTP 4xx); its 429 is rate limiting."""
    postmark.mode = behaviour
    with pytest.raises(DeliveryError) as caught:
        send(EmailSender(), "bounced@example.com")
    error = caught.value
    assert {
        "permanent": error.permanent,
        "transient": not error.permanent and not error.rate_limited,
        "rate limited": error.rate_limited,
    }[kind]


def test_a_wrong_provider_token_is_a_configuration_error(postmark, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_SERVER_TOKEN": "not-the-token"}
    with pytest.raises(ConfigurationError):
        send(EmailSender(), "ann@example.com")
    assert postmark.sent == []


def test_every_email_footer_links_to_the_users_preference_page(
    email_settings, smtp, django_user_model
):
    """Issue 16: the preference page's signed link is in every email's footer (text and HTML),
    in the recipient's language, and it opens that user's page."""
    from notifications.preferences.links import user_id_of

    email_settings.PUBLIC_BASE_URL = "https://notify.example.com"
    user = django_user_model.objects.create(username="ann")
    notification = Notification(user=user, message="Body text", subject="Hi")
    notification.rendered = {
        "language": "ru",
        "email": {
            "text": "Body text",
            "subject": "Hi",
            "html": "<html><body><p>Body</p></body></html>",
        },
    }
    send_with(EmailSender(), notification, contact(email="ann@example.com"))
    (mail,) = smtp.received
    parts = {
        part.get_content_type(): part.get_content().replace("\r\n", "\n")
        for part in mail.message.walk()
        if not part.is_multipart()
    }
    text, html = parts["text/plain"], parts["text/html"]
    assert text.startswith("Body text\n\n-- \n")
    prefix = "https://notify.example.com/preferences/"
    link = text[text.index(prefix) :].split()[0]
    assert user_id_of(link.removeprefix(prefix).rstrip("/")) == user.pk
    assert "Выберите" in text  # the recipient's language
    assert html.index(f'href="{link}"') < html.index("</body>")


def test_no_footer_without_a_public_address(email_settings, smtp, django_user_model):
    email_settings.PUBLIC_BASE_URL = ""
    email_settings.NOTIFY_PUBLIC_URL = ""
    user = django_user_model.objects.create(username="ann")
    send_with(
        EmailSender(), Notification(user=user, message="Body"), contact(email="a@example.com")
    )
    assert smtp.received[0].message.get_content().splitlines() == ["Body"]
