"""The webhooks app's rows: endpoints, the outbox of events with one delivery per endpoint,
each try of a delivery, and the campaigns being watched for their end.

Events copy what they say (the notification's state at the change, in ``data``) and keep the
ids of the notification and campaign as plain numbers, never as foreign keys: retention
deletes notifications without looking here, and events go by their own window
(``NOTIFY_WEBHOOK_EVENT_DAYS``, ``outbox.prune``). The events of notifications are written
by the database triggers of ``triggers``, in the statement that changes the status (the
columns they fill are named there too); their deliveries by the lane (``outbox.fan_out``).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from notifications.webhooks.addresses import validate_webhook_url
from notifications.webhooks.signing import masked, validate_secret

# The notification statuses that send an event (``notification.<status>``): the final ones.
NOTIFICATION_EVENT_STATUSES = (
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "expired",
    "cancelled",
    "suppressed",
)


class EventType(models.TextChoices):
    NOTIFICATION_SENT = "notification.sent", _("notification sent")
    NOTIFICATION_DELIVERED = "notification.delivered", _("notification delivered")
    NOTIFICATION_UNDELIVERED = "notification.undelivered", _("notification undelivered")
    NOTIFICATION_FAILED = "notification.failed", _("notification failed")
    NOTIFICATION_EXPIRED = "notification.expired", _("notification expired")
    NOTIFICATION_CANCELLED = "notification.cancelled", _("notification cancelled")
    NOTIFICATION_SUPPRESSED = "notification.suppressed", _("notification suppressed")
    CAMPAIGN_FINISHED = "campaign.finished", _("campaign finished")


def every_event_type() -> list[str]:
    return list(EventType.values)


def validate_event_types(value: object) -> None:
    """Raises ``ValidationError`` unless ``value`` is a non-empty list of event types."""
    if not isinstance(value, list) or not value:
        raise ValidationError(_("Choose at least one event type."), code="required")
    unknown = [v for v in value if v not in EventType.values]
    if unknown:
        raise ValidationError(
            _("Unknown event type: %(types)s.") % {"types": ", ".join(map(str, unknown))},
            code="invalid_choice",
        )


class WebhookEndpoint(models.Model):
    """A client service's URL that gets the events it subscribed to, signed with its
    secret (and, while a secret rotates, with the previous one too)."""

    url = models.CharField(
        _("URL"),
        max_length=2000,
        validators=[validate_webhook_url],
        help_text=_("Where events are POSTed: https://, on a public address."),
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = models.JSONField(
        _("event types"),
        default=every_event_type,
        validators=[validate_event_types],
        help_text=_("The events this endpoint gets."),
    )
    secret = models.CharField(
        _("secret"), max_length=100, editable=False, validators=[validate_secret]
    )
    # The secret before the last rotation: it signs too until ``previous_secret_until``.
    previous_secret = models.CharField(
        _("previous secret"),
        max_length=100,
        blank=True,
        editable=False,
        validators=[validate_secret],
    )
    previous_secret_until = models.DateTimeField(
        _("previous secret signs until"), null=True, blank=True, editable=False
    )
    enabled = models.BooleanField(
        _("enabled"),
        default=True,
        help_text=_("A disabled endpoint gets no new events, and its waiting ones wait."),
    )
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True, editable=False)
    disabled_reason = models.TextField(_("why disabled"), blank=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.description or self.url

    def signing_secrets(self, now=None) -> list[str]:
        """The secrets that sign now: the current one, and the previous one until its time."""
        now = now or timezone.now()
        current = [self.secret]
        if self.previous_secret and self.previous_secret_until and self.previous_secret_until > now:
            current.append(self.previous_secret)
        return current

    def masked_secrets(self, now=None) -> list[str]:
        return [masked(s) for s in self.signing_secrets(now)]


class WebhookEvent(models.Model):
    """Something that happened, as it was then: a notification's status change (written by
    the trigger in the same statement) or a campaign's end. ``id`` is the ``version`` clients
    compare: a later change of the same notification has a larger one. Events are written in
    ``id`` order, near enough to ``created_at``'s for the prune to go by ``id``."""

    type = models.CharField(_("type"), max_length=40, choices=EventType)
    # No index: every index is a page more to write in the statement that sends a
    # notification; the admin's search by notification reads the events instead.
    notification_id = models.BigIntegerField(_("notification"), null=True)
    campaign_id = models.BigIntegerField(_("campaign"), null=True)
    data = models.JSONField(_("data"), default=dict)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # Whether the lane has made its deliveries (``outbox.fan_out``): the trigger writes this
    # row alone, the least it can in the statement that changes the status. PostgreSQL only:
    # on SQLite the lane goes by ``WebhookFanOutMark`` instead, and events are written with
    # True there, so that none enters the partial index below (``outbox.unfanned``).
    fanned_out = models.BooleanField(_("deliveries made"), default=False)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        indexes = [
            # The events still to fan out: only those are in it.
            models.Index(
                fields=["id"], condition=Q(fanned_out=False), name="webhook_event_unfanned_idx"
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign_id"],
                condition=Q(type="campaign.finished"),
                name="one_campaign_finished_event",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"

    @property
    def message_id(self) -> str:
        """The ``webhook-id`` of every delivery of this event, retries and replays included."""
        return f"msg_{self.pk}"


class WebhookFanOutMark(models.Model):
    """SQLite: the id of the last event fanned out (one row, pk 1, moved only forward by
    ``outbox.fan_out`` in the transaction that makes the deliveries). SQLite has one writer at
    a time, so events commit in ``id`` order: every event above the mark is still to fan out,
    none below. PostgreSQL's writers commit ids out of order, so there the lane goes by
    ``WebhookEvent.fanned_out`` and this table stays empty."""

    last_event_id = models.BigIntegerField(_("last event fanned out"))

    class Meta:
        verbose_name = _("webhook fan-out mark")
        verbose_name_plural = _("webhook fan-out marks")

    def __str__(self) -> str:
        return f"events up to #{self.last_event_id}"


class WebhookDelivery(models.Model):
    """One event to one endpoint: waiting (``pending``, due at ``next_attempt_at``), or done
    (``succeeded``, or ``failed`` after the last retry). A lane that claims it holds it until
    ``lease_expires_at``; a lease that lapsed (its consumer died) lets another lane take it."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        SUCCEEDED = "succeeded", _("Delivered")
        FAILED = "failed", _("Failed")

    event = models.ForeignKey(
        WebhookEvent, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("event")
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="deliveries",
        # No index (the trigger writes a delivery with every event it sends): an endpoint's
        # recent deliveries are read newest id first, which finds an active endpoint's at
        # once; deleting an endpoint, rare, reads the table.
        db_index=False,
        verbose_name=_("endpoint"),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("tries"), default=0)
    next_attempt_at = models.DateTimeField(_("next try at"), null=True, blank=True)
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(_("response time, ms"), null=True, blank=True)
    last_response = models.TextField(_("response (first 1 KB)"), blank=True, default="")
    last_error = models.TextField(_("error"), blank=True, default="")
    # The delivery this one sends again (an operator's replay): its id, kept as a number.
    replay_of = models.BigIntegerField(_("replay of"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]  # newest first, by the key: no index of its own
        indexes = [
            # The lanes' claim and the pending gauges.
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk}"


class WebhookAttempt(models.Model):
    """One try of a delivery: what the endpoint answered, or the error."""

    class Outcome(models.TextChoices):
        SUCCESS = "success", _("Delivered (2xx)")
        REDIRECT = "redirect", _("Redirect (not followed)")
        CLIENT_ERROR = "client_error", _("Client error (4xx)")
        SERVER_ERROR = "server_error", _("Server error (5xx)")
        TIMEOUT = "timeout", _("Timed out")
        CONNECTION_ERROR = "connection_error", _("Connection failed")
        REFUSED = "refused", _("Refused: a private address")

    delivery = models.ForeignKey(
        WebhookDelivery,
        on_delete=models.CASCADE,
        related_name="history",
        verbose_name=_("delivery"),
    )
    number = models.PositiveIntegerField(_("try"))
    started_at = models.DateTimeField(_("started at"))
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("response time, ms"), default=0)
    response = models.TextField(_("response (first 1 KB)"), blank=True, default="")
    error = models.TextField(_("error"), blank=True, default="")

    class Meta:
        verbose_name = _("webhook try")
        verbose_name_plural = _("webhook tries")
        ordering = ["delivery", "number", "id"]

    def __str__(self) -> str:
        return f"#{self.delivery_id}.{self.number}"


class CampaignWatch(models.Model):
    """A campaign some of whose notifications reached a final status while an endpoint
    wanted ``campaign.finished``: the lane checks it until it has ended, then sends the event
    once and forgets it (``outbox.finish_campaigns``)."""

    campaign_id = models.BigIntegerField(_("campaign"), primary_key=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("watched campaign")
        verbose_name_plural = _("watched campaigns")

    def __str__(self) -> str:
        return str(self.campaign_id)
