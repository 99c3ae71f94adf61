"""A claimed notification's round, as delivery carries it: the ``Job`` (where its chain
stands, what it recorded), the state of its run kept on the row (``Progress``), and how a
round ends (``Decision``) or pauses for a pacing slot (``Wait``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from notifications.models import DeliveryAttempt, Notification, UserContact
from notifications.preferences import policy
from notifications.preferences.models import Category
from notifications.reasons import reason_of
from notifications.senders.base import Prepared, Sender

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome


@dataclass(frozen=True)
class Decision:
    """How a round ended: the notification's new status, and when to ring for it again."""

    notification_id: int
    status: str | None  # None: the row is no longer ours (lease lost) or no longer exists
    due: datetime | None = None


@dataclass
class Wait:
    """Call ``advance(job)`` again at ``at`` (Unix time): a pacing slot is booked for then."""

    at: float
    job: Job


# --- the state of one run, kept on the row ---------------------------------------------------


@dataclass
class Progress:
    """``Notification.progress``: what the current run (since the last Send/Resend) knows.

    - ``blocked``: channel → why it is not tried again in this run ("permanent", or
      "unknown": a paid send whose outcome is unknown);
    - ``partial``: a split message partly accepted: its channel, transport, the provider's
      ids of the parts accepted, how many parts in all, and their cost;
    - ``resume``: after a deferral (pacing, rate limit), the chain index to go on from and
      whether earlier channels of the round had transient errors.
    """

    blocked: dict[str, str] = field(default_factory=dict)
    partial: dict[str, Any] | None = None
    resume: dict[str, Any] | None = None

    @classmethod
    def load(cls, value: Any) -> Progress:
        value = value if isinstance(value, dict) else {}
        blocked = value.get("blocked")
        return cls(
            blocked=dict(blocked) if isinstance(blocked, dict) else {},
            partial=value.get("partial") if isinstance(value.get("partial"), dict) else None,
            resume=value.get("resume") if isinstance(value.get("resume"), dict) else None,
        )

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.blocked:
            out["blocked"] = self.blocked
        if self.partial:
            out["partial"] = self.partial
        if self.resume:
            out["resume"] = self.resume
        return out


# --- a claimed notification ------------------------------------------------------------------


@dataclass
class Job:
    """One claimed notification in one round: where its chain stands and what it recorded."""

    notification: Notification
    contact: UserContact
    lease: datetime
    progress: Progress
    order: list[str]
    channel_index: int = 0
    senders: list[Sender] | None = None
    transport_index: int = 0
    prepared: Prepared | None = None
    part: int = 0
    accepted: list[str] = field(default_factory=list)
    cost: Decimal | None = None
    paces_held: int = 0
    slot_at: float | None = None  # the latest slot held for the next part (Unix time)
    rebooks: int = 0
    # Its slot was booked a while before it comes (it waited): a 429 may have paused the
    # provider since, so the pause is read before sending (``pacing.paused_until``).
    booked_ahead: bool = False
    started_at: datetime | None = None
    began: float = 0.0
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    success: DeliveryAttempt | None = None
    transient: bool = False  # some channel may succeed in a later round
    channel_transient: bool = False
    retry_after: float | None = None  # rate limited: requeue after this, not a round
    defer_until: float | None = None  # pacing slot beyond the horizon (Unix time)
    daily_limit: bool = False  # SMS waits for tomorrow's count
    stuck: str = ""  # a partly sent message that can't be completed
    lost: bool = False  # the lease was taken over, the row cancelled, or gone
    policy: policy.Context | None = None  # what the policy step knows about the batch
    category: Category | None = None
    held: bool = False  # the round's policy checks (quiet hours, caps) are done
    slot: policy.Slot | None = None  # a frequency-cap slot this round took
    chose: bool = False  # a channel was skipped by the recipient's own choice
    empty_digest: bool = False  # a digest whose every item was cancelled
    seen_ours: float = field(default_factory=time.monotonic)  # the row last seen ours

    @property
    def round(self) -> int:
        return self.notification.rounds

    def record(
        self,
        channel: str,
        transport: str,
        outcome: str,
        *,
        error: str = "",
        started_at: datetime | None = None,
        duration_ms: int = 0,
        provider_message_id: str = "",
        cost: Decimal | None = None,
        segments: int | None = None,
    ) -> DeliveryAttempt:
        attempt = DeliveryAttempt(
            notification_id=self.notification.pk,
            round=self.round,
            channel=channel,
            transport=transport,
            outcome=outcome,
            error=error,
            reason=reason_of(error),
            provider_message_id=provider_message_id[:255],
            started_at=started_at or timezone.now(),
            duration_ms=duration_ms,
            cost=cost,
            segments=segments,
        )
        self.attempts.append(attempt)
        return attempt

    def summary(self) -> str:
        return "; ".join(
            f"{a.transport}: {a.error}" for a in self.attempts if a.outcome != Outcome.SUCCESS
        )
