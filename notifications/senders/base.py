"""The one interface every transport implements, and its error types.

A channel (telegram, email, sms) has one or more transports, tried in order. Each transport
is a ``Sender``. Delivery (``notifications.delivery``) calls, for one notification:

1. ``address(contact)``: this channel's address, or ``SkipChannel``;
2. ``prepare(...)``: everything that can fail without the provider (the text cut into parts,
   headers, addresses, limits), so nothing fails *after* a provider accepted a message;
3. per part: ``paces(...)`` (pacing slots to hold first), then ``send_part(...)``;
4. when the round ends with parts not sent: ``give_back(...)``.

Every error a transport knows is a ``DeliveryError``; anything else it raises is recorded as
an unexpected error of that attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings

from notifications.redaction import redact

if TYPE_CHECKING:
    from notifications.models import Notification, UserContact


class DeliveryError(Exception):
    """A send that did not go through (or may not have).

    - ``permanent``: this recipient can't get it on this channel: the channel is not tried
      again in this run.
    - ``transport_only`` (with ``permanent``): only this transport refuses the recipient (an
      email-to-SMS gateway's 5xx at RCPT); the channel's next transport is tried.
    - ``retry_after``: the provider asked us to slow down: retry the same channel after that
      many seconds; never a reason to fall through to another channel. ``pause`` names the
      pacing schedule the provider's limit applies to (Telegram's: the whole bot), which is
      then pushed back that long for every worker and host, not just this notification.
    - ``ambiguous``: the request went out and no answer came back (a read timeout, a
      connection dropped after the body was sent): the provider may have accepted it.
    - otherwise transient: the next transport or channel now, the whole chain again later.

    The message is redacted of secrets when the error is made.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        transport_only: bool = False,
        retry_after: float | None = None,
        ambiguous: bool = False,
        pause: str = "",
    ) -> None:
        self.message = redact(message)
        self.permanent = permanent
        self.transport_only = transport_only
        self.retry_after = retry_after
        self.ambiguous = ambiguous
        self.pause = pause
        super().__init__(self.message)

    @property
    def rate_limited(self) -> bool:
        return self.retry_after is not None and not self.permanent


class ConfigurationError(DeliveryError):
    """Our settings are wrong (a refused login, a bad token): transient for delivery, so the
    next transport is tried, and shown to operators as a configuration error."""

    def __init__(self, message: str) -> None:
        super().__init__(f"configuration error: {message}")


class SkipChannel(Exception):
    """This channel can't be tried for this recipient (no address, opted out, …)."""


@dataclass
class PartResult:
    """What a provider said when it accepted one part."""

    provider_message_id: str = ""
    cost: Decimal | None = None


@dataclass
class Prepared:
    """A message made ready for one transport: its parts and whatever the transport needs."""

    address: str
    parts: list[Any]
    segments: int | None = None  # SMS parts the text is billed as
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pace:
    """A pacing slot to hold before sending: ``rate`` sends/second on schedule ``name``."""

    name: str
    rate: float


class Sender:
    """One transport of one channel: Telegram's Bot API, email, SMS Aero's API, SMPP, …

    Senders read their settings at call time, so ``override_settings`` works in tests.
    ``paid`` transports are never sent twice by our own doing: an ambiguous outcome ends the
    channel for the notification's run.
    """

    channel: ClassVar[str]
    transport: ClassVar[str]
    paid: ClassVar[bool] = False
    # The settings this transport needs, every one of them.
    required_settings: ClassVar[tuple[str, ...]] = ()

    def is_configured(self) -> bool:
        """True when every setting this transport needs is set."""
        return bool(self.required_settings) and not self.missing_settings()

    def missing_settings(self) -> list[str]:
        """The required settings that are blank."""
        return [name for name in self.required_settings if not getattr(settings, name, "")]

    def half_configured(self) -> str:
        """When some of the settings this transport needs are set and others are not, what
        is missing (e.g. "SMS_SMTP_HOST is set but SMS_SMTP_ADDRESS is not"); else "". Such a
        transport is skipped as not configured, and says so."""
        missing = self.missing_settings()
        given = [name for name in self.required_settings if name not in missing]
        if not missing or not given:
            return ""
        return f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} set but " + (
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not"
        )

    def address(self, contact: UserContact) -> str:
        """This channel's address in ``contact``; raises ``SkipChannel`` when there is none."""
        raise NotImplementedError

    def prepare(self, notification: Notification, contact: UserContact) -> Prepared:
        """The message for this transport; raises ``DeliveryError`` or ``SkipChannel``.

        Calls no provider.
        """
        raise NotImplementedError

    def paces(self, prepared: Prepared, index: int) -> list[Pace]:
        """The pacing slots part ``index`` must hold before it is sent (none by default)."""
        return []

    def send_part(self, prepared: Prepared, index: int) -> PartResult:
        """Send part ``index``; raises ``DeliveryError``."""
        raise NotImplementedError

    def give_back(self, prepared: Prepared) -> None:
        """The round ended with parts of ``prepared`` not sent (a pacing wait beyond the
        horizon, a rate limit, a cancel, the consumer stopping): give back what ``paces``
        took for them (Telegram's paid-broadcast Stars). Nothing by default."""

    def on_permanent(self, contact: UserContact, error: DeliveryError) -> None:
        """Called when this transport refused the recipient permanently (marks, cleanup)."""

    def check(self) -> str:
        """Ask the provider whether it answers, sending nothing; returns what it said.

        Raises ``DeliveryError`` when it does not answer or refuses our credentials.
        """
        raise NotImplementedError
