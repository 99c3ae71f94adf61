"""SMS through SMS Aero's SMTP gateway: an email to ``<phone digits>@SMS_SMTP_DOMAIN``.

It is the Email channel's sender with its own server, login and addressing
(``SMS_SMTP_*``), over a Django mail connection of its own; SMTP replies are classified by
``classify_smtp_error`` exactly as for email (a 5xx about the recipient — an invalid
number — is permanent; 4xx, refused logins, timeouts and connection errors are transient).
"""

from __future__ import annotations

from email.utils import make_msgid
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMessage

from notifications.senders.base import SendResult
from notifications.senders.email import EmailSender
from notifications.senders.sms import SmsTransport, daily_slot, phone_digits, segment_count

if TYPE_CHECKING:
    from notifications.models import Notification, UserContact


class SmsAeroSmtpSender(SmsTransport, EmailSender):
    channel = "sms"
    transport = "sms_smtp"

    def connection_kwargs(self) -> dict:
        return {
            "host": settings.SMS_SMTP_HOST,
            "port": settings.SMS_SMTP_PORT,
            "username": settings.SMS_SMTP_USER,
            "password": settings.SMS_SMTP_PASSWORD,
            "use_tls": settings.SMS_SMTP_USE_TLS,
            "use_ssl": settings.SMS_SMTP_USE_SSL,
            "timeout": settings.NOTIFY_HTTP_TIMEOUT,
        }

    def is_configured(self) -> bool:
        return bool(settings.SMS_SMTP_HOST)

    def server_name(self) -> str:
        return f"SMS SMTP gateway {settings.SMS_SMTP_HOST}"

    def recipient(self, contact: UserContact) -> str:
        """``79161234567@smsaero.ru``; raises ``SkipChannel`` when there is no phone."""
        return f"{phone_digits(self.phone(contact))}@{settings.SMS_SMTP_DOMAIN}"

    def from_address(self) -> str:
        """``SMS_SMTP_FROM``, else the login when it is an address, else DEFAULT_FROM_EMAIL."""
        user = settings.SMS_SMTP_USER
        return settings.SMS_SMTP_FROM or (user if "@" in user else settings.DEFAULT_FROM_EMAIL)

    def build_message(self, address: str, notification: Notification) -> EmailMessage:
        sender = self.from_address()
        domain = sender.rpartition("@")[2] or "localhost"
        # The gateway sends the body as the SMS text; the subject carries the sender name.
        return EmailMessage(
            subject=settings.SMSAERO_SIGN,
            body=notification.message,
            from_email=sender,
            to=[address],
            headers={"Message-ID": make_msgid(domain=domain)},
        )

    def send(self, contact: UserContact, notification: Notification) -> SendResult:
        with daily_slot():
            result = super().send(contact, notification)
        result.segments = segment_count(notification.message)
        return result
