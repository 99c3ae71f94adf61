"""Email over SMTP, through Django's mail framework.

Classification (``classify_smtp_error``): a 5xx reply about the recipient or the message is
permanent; 4xx replies, refused logins, disconnects, timeouts and connection errors are
transient (a refused login is reported as a configuration error).
"""

from __future__ import annotations

import smtplib
from email.utils import make_msgid
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend

from notifications.senders.base import DeliveryError, SendResult, SkipChannel

if TYPE_CHECKING:
    from notifications.models import Notification, UserContact


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {text}".strip()


def classify_smtp_error(err: Exception, server: str = "SMTP") -> DeliveryError:
    """The ``DeliveryError`` an exception from an SMTP conversation means."""
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        replies = list(err.recipients.values())
        permanent = bool(replies) and all(code >= 500 for code, _ in replies)
        detail = "; ".join(_reply(code, msg) for code, msg in replies)
        return DeliveryError(f"{server} refused the recipient: {detail}", permanent=permanent)
    if isinstance(err, smtplib.SMTPAuthenticationError):
        return DeliveryError(
            f"configuration error: {server} refused the login "
            f"({_reply(err.smtp_code, err.smtp_error)})"
        )
    if isinstance(err, smtplib.SMTPSenderRefused):
        return DeliveryError(
            f"configuration error: {server} refused the sender address "
            f"({_reply(err.smtp_code, err.smtp_error)})"
        )
    if isinstance(err, smtplib.SMTPResponseException):
        return DeliveryError(
            f"{server} refused the message: {_reply(err.smtp_code, err.smtp_error)}",
            permanent=err.smtp_code >= 500,
        )
    if isinstance(err, TimeoutError):
        return DeliveryError(f"{server} did not answer in time")
    if isinstance(err, (smtplib.SMTPException, OSError)):
        return DeliveryError(f"{server} unreachable: {type(err).__name__}: {err}")
    raise err


class EmailSender:
    """Sends through an SMTP server named by settings with a common ``prefix``.

    The Email channel uses Django's ``EMAIL_*``; the SMS gateway reuses this with its own.
    """

    channel = "email"
    transport = "smtp"

    def connection_kwargs(self) -> dict:
        return {
            "host": settings.EMAIL_HOST,
            "port": settings.EMAIL_PORT,
            "username": settings.EMAIL_HOST_USER,
            "password": settings.EMAIL_HOST_PASSWORD,
            "use_tls": settings.EMAIL_USE_TLS,
            "use_ssl": settings.EMAIL_USE_SSL,
            "timeout": settings.EMAIL_TIMEOUT,
        }

    def is_configured(self) -> bool:
        return bool(settings.EMAIL_HOST)

    def server_name(self) -> str:
        return f"SMTP server {settings.EMAIL_HOST}"

    def connection(self) -> EmailBackend:
        return get_connection(
            "django.core.mail.backends.smtp.EmailBackend",
            fail_silently=False,
            **self.connection_kwargs(),
        )

    def recipient(self, contact: UserContact) -> str:
        address = contact.effective_email
        if not address:
            raise SkipChannel("no email address")
        return address

    def build_message(self, address: str, notification: Notification) -> EmailMessage:
        sender = settings.DEFAULT_FROM_EMAIL
        domain = sender.rpartition("@")[2] or "localhost"
        return EmailMessage(
            subject=notification.subject or settings.NOTIFY_EMAIL_SUBJECT,
            body=notification.message,
            from_email=sender,
            to=[address],
            headers={"Message-ID": make_msgid(domain=domain)},
        )

    def send(self, contact: UserContact, notification: Notification) -> SendResult:
        message = self.build_message(self.recipient(contact), notification)
        try:
            with self.connection() as connection:
                connection.send_messages([message])
        except Exception as err:  # classify_smtp_error re-raises kinds it doesn't know
            raise classify_smtp_error(err, self.server_name()) from err
        return SendResult(provider_message_id=message.extra_headers["Message-ID"])

    def check(self) -> str:
        try:
            with self.connection():
                pass
        except Exception as err:  # classify_smtp_error re-raises kinds it doesn't know
            raise classify_smtp_error(err, self.server_name()) from err
        login = " and accepts the login" if self.connection_kwargs()["username"] else ""
        return f"{self.server_name()} answers{login}"
