"""The one interface every channel's sender implements, and its one error type."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from notifications.redaction import redact

if TYPE_CHECKING:
    from notifications.models import Notification, UserContact


class DeliveryError(Exception):
    """A send that did not go through.

    ``permanent``: this recipient cannot get it on this channel (try the next channel, and
    don't retry this one). ``retry_after``: the provider asked us to slow down (rate limited):
    wait that many seconds and retry the same channel. Otherwise the error is transient: try
    the next channel now and the whole chain again in a later round.
    The message is redacted of secrets when the error is made.
    """

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        self.message = redact(message)
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(self.message)

    @property
    def rate_limited(self) -> bool:
        return self.retry_after is not None and not self.permanent


class SkipChannel(Exception):
    """This channel can't be tried for this recipient (no contact data, opted out, …)."""


@dataclass
class SendResult:
    """What a provider told us when it accepted a message."""

    provider_message_id: str = ""
    cost: Decimal | None = None  # what the provider charged, when it says (SMS)
    segments: int | None = None  # SMS parts the text was sent as


class Sender(Protocol):
    """One transport of one channel: Telegram's Bot API, SMTP, SMS Aero's API, SMPP, …

    A channel has one or more senders, tried in order (see ``notifications.channels``).
    Senders read their settings at call time, so ``override_settings`` works in tests.
    """

    channel: str
    transport: str

    def is_configured(self) -> bool:
        """True when every setting this transport needs is set."""

    def recipient(self, contact: UserContact) -> str:
        """This channel's address in ``contact``; raises ``SkipChannel`` when there is none."""

    def send(self, contact: UserContact, notification: Notification) -> SendResult:
        """Deliver ``notification``; raises ``DeliveryError``."""

    def check(self) -> str:
        """Ask the provider whether it answers, sending nothing; returns what it said.

        Raises ``DeliveryError`` when it does not answer or refuses our credentials.
        """
