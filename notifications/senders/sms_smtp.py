"""SMS through a generic email-to-SMS gateway: a mail to an address made from the number.

Several providers take SMS by email: a mail to ``79161234567@sms.example.net`` is sent as an
SMS to that number, its body being the text. ``SMS_SMTP_ADDRESS`` is the address template
(``{digits}`` or ``{phone}``), ``SMS_SMTP_SUBJECT`` the subject template (``{sign}``,
``{digits}``; blank is allowed), ``SMS_SMTP_PROVIDER`` the provider's name in errors, and
``SMS_SMTP_*`` the server and login. Check your provider's documentation for each.

The mail goes through its own ``Mailer`` (one open SMTP connection per thread, checked
before use). A gateway refusing the recipient (SMTP 5xx at RCPT) costs nothing and says
nothing about the number, so the next SMS transport is tried; 4xx, timeouts and connection
errors are transient; a break during ``DATA`` is ambiguous (the gateway may have taken it).
"""

from __future__ import annotations

from email.utils import make_msgid
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.mail import EmailMessage

from notifications.senders.base import DeliveryError, PartResult, Prepared
from notifications.senders.email import Mailer, checked_message, validated_address
from notifications.senders.sms import SmsSender, phone_digits

if TYPE_CHECKING:
    from notifications.models import Notification, UserContact

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


class SmsSmtpSender(SmsSender):
    transport = "sms_smtp"
    required_settings = ("SMS_SMTP_HOST", "SMS_SMTP_ADDRESS")

    def __init__(self) -> None:
        self.mailer = Mailer(
            backend=lambda: SMTP_BACKEND, options=self.connection_options, server=self.server_name
        )

    def connection_options(self) -> dict[str, Any]:
        return {
            "host": settings.SMS_SMTP_HOST,
            "port": settings.SMS_SMTP_PORT,
            "username": settings.SMS_SMTP_USER,
            "password": settings.SMS_SMTP_PASSWORD,
            "use_tls": settings.SMS_SMTP_USE_TLS,
            "use_ssl": settings.SMS_SMTP_USE_SSL,
            "timeout": settings.NOTIFY_HTTP_TIMEOUT,
        }

    def provider_name(self) -> str:
        return settings.SMS_SMTP_PROVIDER

    def server_name(self) -> str:
        return f"{settings.SMS_SMTP_PROVIDER} {settings.SMS_SMTP_HOST}"

    def max_length(self) -> int:
        return settings.SMS_SMTP_MAX_LENGTH

    def gateway_address(self, phone: str) -> str:
        """The gateway's address for ``phone``: SMS_SMTP_ADDRESS filled in."""
        return settings.SMS_SMTP_ADDRESS.format(digits=phone_digits(phone), phone=phone)

    def from_address(self) -> str:
        """``SMS_SMTP_FROM``, else the login when it is an address, else DEFAULT_FROM_EMAIL."""
        user = settings.SMS_SMTP_USER
        return settings.SMS_SMTP_FROM or (user if "@" in user else settings.DEFAULT_FROM_EMAIL)

    def prepare(self, notification: Notification, contact: UserContact) -> Prepared:
        prepared = super().prepare(notification, contact)
        address = validated_address(self.gateway_address(prepared.address), "the gateway address")
        sender = validated_address(self.from_address(), "the gateway's From address")
        subject = settings.SMS_SMTP_SUBJECT.format(
            sign=settings.SMSAERO_SIGN, digits=phone_digits(prepared.address)
        )
        message = EmailMessage(
            subject=subject,
            body=prepared.extra["text"],
            from_email=sender,
            to=[address],
            headers={"Message-ID": make_msgid(domain=sender.rpartition("@")[2] or "localhost")},
        )
        prepared.extra["message"] = checked_message(message)
        return prepared

    def submit(self, prepared: Prepared, index: int) -> PartResult:
        message: EmailMessage = prepared.extra["message"]
        try:
            self.mailer.send(message)
        except DeliveryError as err:
            if err.permanent:
                # The gateway refuses this recipient; that says nothing about the number.
                raise DeliveryError(err.message, permanent=True, transport_only=True) from err
            raise
        return PartResult(provider_message_id=message.extra_headers["Message-ID"])

    def check(self) -> str:
        self.mailer.check()
        login = " and accepts the login" if settings.SMS_SMTP_USER else ""
        return f"{self.server_name()} answers{login}"
