"""Email through the configured Django email backend (SMTP by default, or any other, such as
django-anymail's), over a connection each thread keeps open between messages.

``Mailer`` is the connection discipline, shared with the email-to-SMS gateway:

- each thread keeps one open connection; before use, one idle longer than
  ``NOTIFY_SMTP_CHECK_IDLE_SECONDS`` is checked with SMTP ``NOOP`` and reopened if dead;
  after ``NOTIFY_SMTP_MESSAGES_PER_CONNECTION`` messages (0, the default: never) it is
  renewed;
- when the server closed the connection before the message's ``DATA`` began (nothing was
  sent), it reconnects once and sends again; a break during ``DATA`` is ambiguous.

Classification (``classify_mail_error``): SMTP 5xx about the recipient or the message is
permanent; 4xx, disconnects, timeouts and connection errors are transient; a refused login
or sender is a configuration error. A recipient refused as unknown (``5.1.1`` "user
unknown" and the other 5.1.x codes of a dead destination address) is a ``RecipientUnknown``:
the email sender then suppresses the address (``on_permanent``; nothing on the success path). The errors of other backends (django-anymail's) map the
same way: refused recipients and invalid addresses are permanent, HTTP 429 is rate limited,
401/403 are configuration errors, 5xx and network errors are transient.
"""

from __future__ import annotations

import functools
import re
import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import make_msgid
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import BadHeaderError, forbid_multi_line_headers, sanitize_address
from django.core.validators import validate_email
from django.utils.module_loading import import_string

from notifications.content import content_for, recipient_language
from notifications.operations import metrics
from notifications.preferences import unsubscribe
from notifications.preferences.links import email_footer
from notifications.senders.base import (
    ConfigurationError,
    DeliveryError,
    PartResult,
    Prepared,
    Sender,
    SkipChannel,
)
from notifications.senders.http import connect_phase
from notifications.suppression.services import suppression_record_refusal

if TYPE_CHECKING:
    from notifications.models import Notification, UserContact


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {text}".strip()


def _anymail_error(err: Exception, server: str) -> DeliveryError | None:
    """The ``DeliveryError`` a django-anymail exception means (matched by name, so anymail
    is not a dependency); None for anything else."""
    names = {cls.__name__ for cls in type(err).__mro__}
    if not any(name.startswith("Anymail") for name in names):
        return None
    detail = f"{server}: {err}"
    if names & {"AnymailRecipientsRefused", "AnymailInvalidAddress"}:
        return DeliveryError(detail, permanent=True)
    if "AnymailConfigurationError" in names or "AnymailImproperlyInstalled" in names:
        return ConfigurationError(detail)
    status = getattr(err, "status_code", None)
    response = getattr(err, "response", None)
    if status == 429:
        metrics.rate_limited("email")
        retry_after = 1.0
        try:
            retry_after = float(response.headers.get("Retry-After") or 1)
        except (AttributeError, TypeError, ValueError):
            pass
        return DeliveryError(detail, retry_after=retry_after)
    if status in (401, 403):
        return ConfigurationError(detail)
    if status is not None and 400 <= status < 500:
        return DeliveryError(detail, permanent=True)
    if status is not None:
        return DeliveryError(detail)
    # No HTTP answer: the request failed on the network.
    cause = err.__cause__ or err.__context__
    ambiguous = not (isinstance(cause, requests.RequestException) and connect_phase(cause))
    return DeliveryError(detail, ambiguous=ambiguous)


# RFC 3463's X.1.x codes of a destination address that does not exist: bad mailbox (1),
# bad system (2), bad syntax (3), mailbox moved (6), and RFC 7505's null MX (10). Not 5.1.0
# (servers use it for a refused sender too) nor 5.1.4 (ambiguous).
_UNKNOWN_ENHANCED = re.compile(r"(?<![\d.])5\.1\.(?:1|2|3|6|10)(?![\d.])")
_ANY_ENHANCED = re.compile(r"(?<![\d.])[245]\.\d{1,3}\.\d{1,3}(?![\d.])")
# The words of a "user unknown" from a server that gives no enhanced code.
_UNKNOWN_WORDS = re.compile(
    r"\b(?:user unknown|unknown user|no such (?:user|mailbox|recipient)|"
    r"mailbox (?:not found|does not exist)|recipient (?:unknown|not found))\b",
    re.IGNORECASE,
)


class RecipientUnknown(DeliveryError):
    """The server refused the recipient as an address that does not exist (permanent):
    ``replies`` maps each such address to the server's reply."""

    def __init__(self, message: str, replies: dict[str, str]) -> None:
        super().__init__(message, permanent=True)
        self.replies = replies


def mailbox_unknown(code: int, reply: str) -> bool:
    """Whether an SMTP reply to RCPT says the mailbox does not exist: a 5xx with a 5.1.x
    code of a dead destination address, or, without an enhanced code, in words."""
    if code < 500:
        return False
    if _UNKNOWN_ENHANCED.search(reply):
        return True
    return not _ANY_ENHANCED.search(reply) and bool(_UNKNOWN_WORDS.search(reply))


def classify_mail_error(err: Exception, server: str, *, opening: bool = False) -> DeliveryError:
    """The ``DeliveryError`` an exception from a mail backend means; re-raises unknown kinds.

    ``opening``: it happened while connecting and logging in (nothing was sent).
    """
    anymail = _anymail_error(err, server)  # (requests' errors are OSErrors: first)
    if anymail is not None:
        return anymail
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        replies = list(err.recipients.values())
        permanent = bool(replies) and all(code >= 500 for code, _ in replies)
        detail = "; ".join(_reply(code, msg) for code, msg in replies)
        unknown = {
            str(address): _reply(code, msg)
            for address, (code, msg) in err.recipients.items()
            if mailbox_unknown(code, _reply(code, msg))
        }
        if permanent and unknown:
            return RecipientUnknown(f"{server} refused the recipient: {detail}", unknown)
        return DeliveryError(f"{server} refused the recipient: {detail}", permanent=permanent)
    if isinstance(err, smtplib.SMTPAuthenticationError):
        return ConfigurationError(
            f"{server} refused the login ({_reply(err.smtp_code, err.smtp_error)})"
        )
    if isinstance(err, smtplib.SMTPNotSupportedError):
        return ConfigurationError(
            f"{server} does not support what the settings ask ({err}); for STARTTLS check "
            "EMAIL_USE_TLS / EMAIL_PORT (587 with STARTTLS, 465 with EMAIL_USE_SSL)"
        )
    if isinstance(err, smtplib.SMTPSenderRefused):
        return ConfigurationError(
            f"{server} refused the sender address ({_reply(err.smtp_code, err.smtp_error)})"
        )
    if isinstance(err, smtplib.SMTPResponseException):
        return DeliveryError(
            f"{server} refused the message: {_reply(err.smtp_code, err.smtp_error)}",
            permanent=err.smtp_code >= 500,
        )
    if isinstance(err, TimeoutError):
        return DeliveryError(f"{server} did not answer in time", ambiguous=not opening)
    if isinstance(err, smtplib.SMTPServerDisconnected):
        return DeliveryError(f"{server} closed the connection: {err}", ambiguous=not opening)
    if isinstance(err, (smtplib.SMTPException, OSError)):
        return DeliveryError(
            f"{server} unreachable: {type(err).__name__}: {err}", ambiguous=not opening
        )
    if isinstance(err, ImproperlyConfigured):
        return ConfigurationError(f"{server}: {err}")
    raise err


@dataclass
class _Connection:
    backend: BaseEmailBackend
    key: tuple
    used_at: float
    sent: int = 0
    data_started: bool = False


class Mailer:
    """Sends ``EmailMessage``s through one kind of backend, one open connection per thread.

    ``backend`` and ``options`` are read at call time (so tests can change settings);
    ``server`` names it in errors.
    """

    def __init__(
        self,
        backend: Callable[[], str],
        options: Callable[[], dict[str, Any]],
        server: Callable[[], str],
    ) -> None:
        self._backend = backend
        self._options = options
        self._server = server
        self._local = threading.local()

    def server(self) -> str:
        return self._server()

    def _open(self) -> _Connection:
        path, options = self._backend(), self._options()
        key = (path, tuple(sorted(options.items())))
        connection = _Connection(
            get_connection(path, fail_silently=False, **options), key, time.monotonic()
        )
        try:
            connection.backend.open()
        except Exception as err:
            raise classify_mail_error(err, self.server(), opening=True) from err
        smtp = getattr(connection.backend, "connection", None)
        if isinstance(connection.backend, SmtpBackend) and smtp is not None:
            # Know whether a message's DATA began: a break before it means nothing was sent.
            original = smtp.data

            def data(msg, _original=original, _connection=connection):
                _connection.data_started = True
                return _original(msg)

            smtp.data = data
        return connection

    def _alive(self, connection: _Connection) -> bool:
        smtp = getattr(connection.backend, "connection", None)
        if smtp is None or not hasattr(smtp, "noop"):
            return True  # not SMTP: nothing to check
        try:
            return smtp.noop()[0] == 250
        except (smtplib.SMTPException, OSError):
            return False

    def connection(self) -> _Connection:
        """This thread's open connection, checked and renewed as the module says."""
        current: _Connection | None = getattr(self._local, "connection", None)
        if current is not None:
            options_key = (self._backend(), tuple(sorted(self._options().items())))
            idle = time.monotonic() - current.used_at
            stale = (
                current.key != options_key
                or 0 < settings.NOTIFY_SMTP_MESSAGES_PER_CONNECTION <= current.sent
                or (idle > settings.NOTIFY_SMTP_CHECK_IDLE_SECONDS and not self._alive(current))
            )
            if not stale:
                return current
            self.close()
        self._local.connection = self._open()
        return self._local.connection

    def close(self) -> None:
        """Close this thread's connection, if any."""
        current: _Connection | None = getattr(self._local, "connection", None)
        self._local.connection = None
        if current is not None:
            try:
                current.backend.close()
            except Exception:  # noqa: BLE001 - closing a dead connection may fail; it is gone
                pass

    def send(self, message: EmailMessage) -> None:
        """Send ``message``; raises ``DeliveryError``."""
        for attempt in (1, 2):
            connection = self.connection()
            connection.data_started = False
            try:
                connection.backend.send_messages([message])
            except Exception as err:
                self.close()
                # The connection died, or the server is closing it (421: too many messages
                # on one connection, shutting down), before the message's DATA: nothing was
                # sent, so a new connection may send it.
                closing = isinstance(err, smtplib.SMTPServerDisconnected) or (
                    isinstance(err, smtplib.SMTPResponseException) and err.smtp_code == 421
                )
                nothing_sent = (
                    closing
                    and not connection.data_started
                    and isinstance(connection.backend, SmtpBackend)
                )
                if nothing_sent and attempt == 1:
                    continue  # reconnect once and send again
                if nothing_sent:
                    raise DeliveryError(f"{self.server()} closed the connection twice") from err
                raise classify_mail_error(err, self.server()) from err
            connection.sent += 1
            connection.used_at = time.monotonic()
            return

    def check(self) -> None:
        """Connect and log in, sending nothing; raises ``DeliveryError``."""
        connection = self._open()
        try:
            connection.backend.close()
        except Exception:  # noqa: BLE001
            pass


@functools.lru_cache(maxsize=4096)
def _address_problem(address: str) -> str:
    """Why ``address`` can't be mailed ("" when it can): what the mail backend's own
    address handling would refuse, found here, before any server is called."""
    try:
        validate_email(address)
        sanitize_address(address, settings.DEFAULT_CHARSET)
    except (ValidationError, ValueError) as err:
        return str(err)
    return ""


def validated_address(address: str, what: str) -> str:
    """``address`` if it is one valid email address; else a permanent ``DeliveryError``."""
    if _address_problem(address):
        raise DeliveryError(f"{what} {address!r} is not a valid email address", permanent=True)
    return address


def checked_message(message: EmailMessage) -> EmailMessage:
    """``message`` with every header checked as the mail backend will build it (no line
    breaks: header injection), so a bad one fails here, before any server is called;
    raises a permanent ``DeliveryError``."""
    headers = {"Subject": message.subject, **message.extra_headers}
    try:
        for name, value in headers.items():
            forbid_multi_line_headers(name, value, message.encoding)
    except (BadHeaderError, ValueError) as err:
        raise DeliveryError(f"the message can't be mailed: {err}", permanent=True) from err
    return message


class EmailSender(Sender):
    channel = "email"
    transport = "email"

    def __init__(self) -> None:
        self.mailer = Mailer(
            backend=lambda: settings.EMAIL_BACKEND,
            options=self.backend_options,
            server=self.server_name,
        )

    def backend_options(self) -> dict[str, Any]:
        """The SMTP backend's connection settings (other backends read their own)."""
        if not issubclass(_backend_class(settings.EMAIL_BACKEND), SmtpBackend):
            return {}
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
        if issubclass(_backend_class(settings.EMAIL_BACKEND), SmtpBackend):
            return bool(settings.EMAIL_HOST)
        return bool(settings.EMAIL_BACKEND)

    def server_name(self) -> str:
        if issubclass(_backend_class(settings.EMAIL_BACKEND), SmtpBackend):
            return f"SMTP server {settings.EMAIL_HOST}"
        return f"email backend {settings.EMAIL_BACKEND.rsplit('.', 2)[-2]}"

    def address(self, contact: UserContact) -> str:
        address = contact.effective_email.strip()
        if not address:
            raise SkipChannel("no email address")
        return address

    def prepare(self, notification: Notification, contact: UserContact) -> Prepared:
        address = validated_address(self.address(contact), "the email address")
        sender = validated_address(settings.DEFAULT_FROM_EMAIL, "DEFAULT_FROM_EMAIL")
        content = content_for(notification, self.channel)
        language = recipient_language(notification)
        # A category users may turn off: RFC 8058's one-click headers and a footer link.
        link, category = unsubscribe.email_link(notification)
        footer_text, footer_html = email_footer(
            notification.user_id,
            language,
            unsubscribe=link,
            topic=category.name(language) if category is not None else "",
        )
        domain = sender.rpartition("@")[2] or "localhost"
        message = EmailMultiAlternatives(
            subject=content.subject,
            body=content.text + footer_text,
            from_email=sender,
            to=[address],
            headers={"Message-ID": make_msgid(domain=domain), **unsubscribe.headers(link)},
        )
        if content.html:
            message.attach_alternative(_with_footer(content.html, footer_html), "text/html")
        return Prepared(address=address, parts=[checked_message(message)])

    def send_part(self, prepared: Prepared, index: int) -> PartResult:
        message = prepared.parts[index]
        self.mailer.send(message)
        status = getattr(message, "anymail_status", None)
        provider_id = getattr(status, "message_id", None) if status is not None else None
        return PartResult(
            provider_message_id=str(provider_id or message.extra_headers["Message-ID"])
        )

    def on_permanent(self, contact: UserContact, error: DeliveryError) -> None:
        """A recipient refused as unknown (``RecipientUnknown``) suppresses its address, so
        later notifications skip email (``notifications.suppression``)."""
        if not isinstance(error, RecipientUnknown):
            return
        replies = error.replies
        if len(replies) == 1:  # our one recipient: as the contact writes it
            replies = {self.address(contact): next(iter(replies.values()))}
        suppression_record_refusal(replies=replies, server=self.server_name())

    def check(self) -> str:
        self.mailer.check()
        login = " and accepts the login" if self.backend_options().get("username") else ""
        return f"{self.server_name()} answers{login}"


def _with_footer(html: str, footer: str) -> str:
    """``html`` with ``footer`` at the end of its body (or of the text, if it has none)."""
    if not footer:
        return html
    end = html.lower().rfind("</body>")
    if end < 0:
        return html + footer
    return html[:end] + footer + html[end:]


@functools.cache
def _backend_class(path: str) -> type:
    try:
        return import_string(path)
    except ImportError as err:
        raise ImproperlyConfigured(f"EMAIL_BACKEND {path!r} can't be imported: {err}") from err
