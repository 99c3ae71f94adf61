"""SMS through the SMS Aero HTTP API, with the official ``smsaero-api`` client.

The client is used for what it is good at (validating a send and building its payload, the
endpoint names, test mode) but two of its defects are taken out by ``SafeSmsAero``:

1. On an SSL error its ``request()`` retries the next gate over plain ``http://`` with the
   account's email and API key in the URL. Here every request goes to the scheme configured
   (``https://`` for the built-in gates; ``SMSAERO_API_URL`` as given), never downgraded, with
   the credentials in an ``Authorization`` header, through the service's one HTTP path.
2. Its constructor checks the account email's domain over DNS (``email_validator`` with
   deliverability), so merely building a client fails without DNS and costs a lookup per
   send. The email's syntax is checked locally instead; whether the account exists is for
   SMS Aero to say, and ``check()`` asks it.

Gates: the next gate is tried only when the request surely did not reach the previous one
(connection refused, DNS, the TLS handshake) or it answered 500/503. A read timeout, a
dropped connection, 502 or 504 may mean the message was taken: that is ambiguous, and no
other gate (or transport) is tried, so the SMS is not paid for twice.

Classification (``classify``): ``reject`` and an invalid number are permanent for this
recipient; ``no credits`` and other errors are transient; refused credentials are a
configuration error; 429 is rate limiting.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from email_validator import EmailNotValidError, validate_email
from smsaero import SmsAero

from notifications.operations import metrics
from notifications.senders import http
from notifications.senders.base import ConfigurationError, DeliveryError, PartResult, Prepared
from notifications.senders.sms import SmsSender, phone_digits

if TYPE_CHECKING:
    from notifications.models import Notification, UserContact

# The client's own gates, in its order, as full base URLs: always HTTPS.
BUILT_IN_GATES = tuple(f"https://{gate.lstrip('@')}" for gate in SmsAero.GATE_URLS)


def _looks_like_invalid_number(payload: dict[str, Any]) -> bool:
    data = payload.get("data")
    if isinstance(data, dict) and ("number" in data or "numbers" in data):
        return True
    text = f"{payload.get('message') or ''} {payload.get('reason') or ''}".lower()
    return "number" in text and ("invalid" in text or "incorrect" in text or "wrong" in text)


def classify(answer: http.HttpAnswer) -> Any:
    """The ``data`` of a successful SMS Aero answer; raises the ``DeliveryError`` it means."""
    status_code, payload = answer.status_code, answer.payload
    if 200 <= status_code < 300 and payload.get("success"):
        return payload.get("data")
    result = str(payload.get("result") or "")
    detail = str(
        payload.get("reason")
        or payload.get("message")
        or result
        or payload.get("_not_json")
        or "unknown error"
    )
    summary = f"SMS Aero (HTTP {status_code}): {detail}"
    if result == "no credits":
        raise DeliveryError(f"SMS Aero: no credits left on the account ({detail})")
    if result == "reject":
        raise DeliveryError(f"SMS Aero rejected the message: {detail}", permanent=True)
    if status_code in (401, 403):
        raise ConfigurationError(
            f"SMS Aero refused the credentials ({summary}); check SMSAERO_EMAIL and SMSAERO_API_KEY"
        )
    if status_code == 429:
        metrics.rate_limited("sms_api")
        raise DeliveryError(summary, retry_after=1.0)
    if _looks_like_invalid_number(payload):
        raise DeliveryError(f"SMS Aero: invalid number ({detail})", permanent=True)
    if status_code in (502, 504):
        raise DeliveryError(f"{summary} (it may have accepted the message)", ambiguous=True)
    raise DeliveryError(summary)


class _GateDown(DeliveryError):
    """This gate answered 500/503: it did not take the request; another gate may."""


def _classify_gate(answer: http.HttpAnswer) -> Any:
    if answer.status_code in (500, 503):
        raise _GateDown(f"HTTP {answer.status_code}")
    return classify(answer)


class SafeSmsAero(SmsAero):
    """``SmsAero`` that never sends credentials over plain HTTP and does no DNS in __init__.

    ``base_urls``: full base URLs (``https://gate.smsaero.ru/v2/``) tried in order while one
    is unreachable; the scheme of each is used exactly as given.
    """

    def __init__(
        self,
        *,
        email: str,
        api_key: str,
        signature: str,
        base_urls: tuple[str, ...],
        timeout: float,
        test_mode: bool = False,
    ) -> None:
        # The client wants an int timeout above 2 s; ours is passed to every request instead.
        super().__init__(
            email=email,
            api_key=api_key,
            signature=signature,
            timeout=15,
            test_mode=test_mode,
        )
        self.base_urls = tuple(url if url.endswith("/") else url + "/" for url in base_urls)
        self.auth = (email, api_key)
        self.http_timeout = timeout

    @staticmethod
    def init_validate(email: str, api_key: str, signature: str = "", *args: Any, **kw: Any) -> None:
        """The client's checks of its arguments, the email's syntax checked locally (no DNS).

        Raises ``ValueError``/``TypeError`` like the client does.
        """
        try:
            validate_email(email, check_deliverability=False)
        except EmailNotValidError as err:
            raise ValueError(str(err)) from err
        if not isinstance(api_key, str) or not 16 <= len(api_key) <= 32:
            raise ValueError("API key length must be between 16 and 32 characters.")
        if not isinstance(signature, str) or len(signature) < 2:
            raise ValueError("Signature length must be at least 2 characters.")

    def request(
        self,
        selector: str,
        data: dict | None = None,
        page: int | None = None,
        proto: str = "https",
    ) -> Any:
        """POST ``selector`` to the first gate that takes it; ``proto`` is ignored on purpose.

        Returns the answer's ``data``; raises ``DeliveryError``.
        """
        unreachable: list[str] = []
        for base in self.base_urls:
            url = urljoin(base, selector)
            if page:
                url += f"?page={int(page)}"
            host = urlsplit(url).netloc
            try:
                return http.call(
                    url,
                    provider="SMS Aero",
                    describe_url=host,
                    timeout=self.http_timeout,
                    json=data,
                    auth=self.auth,
                    classify=_classify_gate,
                )
            except _GateDown as down:
                unreachable.append(f"{host}: {down.message}")
            except http.Unreachable as err:
                unreachable.append(err.message)
        raise DeliveryError(f"SMS Aero unreachable: {'; '.join(unreachable)}")


def _money(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


class SmsAeroApiSender(SmsSender):
    transport = "sms_api"
    required_settings = ("SMSAERO_EMAIL", "SMSAERO_API_KEY")
    provider = "SMS Aero"
    min_length = 2

    def max_length(self) -> int:
        return 640

    def base_urls(self) -> tuple[str, ...]:
        """``SMSAERO_API_URL`` when set, else the client's built-in gates (HTTPS)."""
        return (settings.SMSAERO_API_URL,) if settings.SMSAERO_API_URL else BUILT_IN_GATES

    def client(self) -> SafeSmsAero:
        """A client for the configured account; raises ``ConfigurationError``."""
        try:
            return SafeSmsAero(
                email=settings.SMSAERO_EMAIL,
                api_key=settings.SMSAERO_API_KEY,
                signature=settings.SMSAERO_SIGN,
                base_urls=self.base_urls(),
                timeout=settings.NOTIFY_HTTP_TIMEOUT,
                test_mode=settings.SMSAERO_TEST_MODE,
            )
        except (ValueError, TypeError) as err:
            raise ConfigurationError(f"SMS Aero settings: {err}") from err

    def callback_url(self) -> str | None:
        """Where SMS Aero reports delivery: NOTIFY_PUBLIC_URL + /sms/callback/<secret>/."""
        public = getattr(settings, "NOTIFY_PUBLIC_URL", "")
        secret = getattr(settings, "SMS_CALLBACK_SECRET", "")
        if not (public and secret):
            return None
        return f"{public.rstrip('/')}/sms/callback/{secret}/"

    def prepare(self, notification: Notification, contact: UserContact) -> Prepared:
        prepared = super().prepare(notification, contact)
        client = self.client()
        number = int(phone_digits(prepared.address))
        callback = self.callback_url()
        try:
            client.send_sms_validate(number, prepared.parts[0], None, None, callback)
        except (ValueError, TypeError) as err:  # the client's own checks; nothing is sent
            permanent = "number" in str(err).lower()
            raise DeliveryError(
                f"SMS Aero client refused: {err}", permanent=permanent, transport_only=not permanent
            ) from err
        prepared.extra.update(client=client, number=number, callback=callback)
        return prepared

    def submit(self, prepared: Prepared, index: int) -> PartResult:
        client: SafeSmsAero = prepared.extra["client"]
        data = client.send_sms(
            prepared.extra["number"], prepared.parts[0], callback_url=prepared.extra["callback"]
        )
        data = data if isinstance(data, dict) else {}
        return PartResult(
            provider_message_id=str(data.get("id", "")), cost=_money(data.get("cost"))
        )

    def check(self) -> str:
        client = self.client()
        client.is_authorized()
        balance = (client.balance() or {}).get("balance", "?")
        mode = " (test mode)" if settings.SMSAERO_TEST_MODE else ""
        return f"SMS Aero accepts the credentials{mode}, balance {balance}"
