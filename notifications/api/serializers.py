"""What the API reads and writes. Input serializers check types only: the rules (an empty
message, an unknown channel, an expiry before the send time, a phone number that is not a
mobile) are the services' and the models', so the API answers with the same messages as
``notification_create`` and the admin."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from notifications.models import Channel, DeliveryAttempt, Notification, UserContact

BATCH_MAX = 1000
MAX_ID = 2**63 - 1
# A send or expiry time further away than this is a mistake, not a plan.
FURTHEST = timedelta(days=366 * 100)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it doesn't know, so a typo ("subjet") is an error, not silently lost."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                known = ", ".join(name for name, f in self.fields.items() if not f.read_only)
                raise serializers.ValidationError(
                    {name: [f"Unknown field; the fields are {known}."] for name in unknown}
                )
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": MAX_ID},
            {"type": "string", "minLength": 1, "maxLength": 150},
        ],
        "description": "The user's id (a number) or username (a string).",
    }
)
class UserReferenceField(serializers.Field):
    """A user named by id (a JSON number) or username (a JSON string); resolved by the view
    in one query for a whole batch."""

    default_error_messages = {
        "invalid": "Give the user's id (a number) or username (a string).",
        "id": "{value} is not a user id.",
        "username": "Not a username: {reason}.",
    }

    def to_internal_value(self, data: Any) -> int | str:
        if isinstance(data, bool) or not isinstance(data, (int, str)):
            self.fail("invalid")
        if isinstance(data, int):
            if not 1 <= data <= MAX_ID:
                self.fail("id", value=data)
            return data
        if not data.strip():
            self.fail("invalid")
        if len(data) > 150:
            self.fail("username", reason="longer than 150 characters")
        if "\x00" in data or re.search("[\ud800-\udfff]", data):
            self.fail("username", reason="it contains a NUL or surrogate character")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time with its offset (``2026-12-01T09:00:00+03:00`` or ``…Z``)."""

    default_error_messages = {
        "naive": "Give the time with its offset, e.g. 2026-12-01T09:00:00+03:00 or "
        "2026-12-01T06:00:00Z.",
        "far": "This time is more than 100 years away.",
    }

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, str):
            parsed = None
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                pass
            if parsed is not None and timezone.is_naive(parsed):
                self.fail("naive")
        result = super().to_internal_value(value)
        if abs(result - timezone.now()) > FURTHEST:
            self.fail("far")
        return result


class NotificationCreateSerializer(StrictSerializer):
    """A notification to create (unknown fields are refused)."""

    user = UserReferenceField()
    message = serializers.CharField(
        allow_blank=True,
        trim_whitespace=False,
        help_text="The text to send (at most NOTIFY_MESSAGE_MAX_LENGTH characters).",
    )
    subject = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="Email subject, one line; a default is used when blank.",
    )
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=Channel.choices),
        required=False,
        allow_null=True,
        max_length=len(Channel.choices),
        help_text="Channels to try, in order, for this notification only; default: all, in "
        "the service's order (NOTIFY_CHANNEL_ORDER).",
    )
    send_at = AwareDateTimeField(
        required=False,
        allow_null=True,
        help_text="Not sent before this time: a future time gives status `scheduled`.",
    )
    expires_at = AwareDateTimeField(
        required=False,
        allow_null=True,
        help_text="Never delivered after this time (it ends `expired`); default: "
        "NOTIFY_MESSAGE_TTL after it is due.",
    )


class NotificationBatchSerializer(StrictSerializer):
    """Notifications to create together, all or none."""

    notifications = NotificationCreateSerializer(
        many=True,
        allow_empty=False,
        max_length=BATCH_MAX,
        help_text=f"1 to {BATCH_MAX} notifications, created all together or not at all.",
    )


@extend_schema_field(
    serializers.ChoiceField(choices=Channel.choices, allow_null=True, read_only=True)
)
class DeliveredViaField(serializers.ReadOnlyField):
    """The channel that delivered it; null until one did."""

    def to_representation(self, value: str) -> str | None:
        return value or None


class NotificationSerializer(serializers.Serializer):
    """A notification and where its delivery stands. (Fields declared one by one: a
    ModelSerializer would rebuild them from the model on every response.)"""

    id = serializers.IntegerField(read_only=True)
    user = serializers.IntegerField(source="user_id", read_only=True)
    username = serializers.CharField(source="user.get_username", read_only=True)
    subject = serializers.CharField(read_only=True)
    message = serializers.CharField(read_only=True)
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=Channel.choices),
        read_only=True,
        help_text="This notification's own chain; empty: the service's order.",
    )
    status = serializers.ChoiceField(choices=Notification.Status.choices, read_only=True)
    channel = DeliveredViaField(help_text="The channel that delivered it; null until one did.")
    created_at = serializers.DateTimeField(read_only=True)
    queued_at = serializers.DateTimeField(read_only=True, allow_null=True)
    send_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Not sent before this time."
    )
    expires_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Never delivered after this time."
    )
    next_attempt_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When it is due (its next round)."
    )
    sent_at = serializers.DateTimeField(read_only=True, allow_null=True)
    rounds = serializers.IntegerField(
        read_only=True, help_text="How many times the channel chain was tried in this run."
    )
    last_error = serializers.CharField(read_only=True)


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    channel = DeliveredViaField(help_text="The channel tried; null for a lease record.")

    class Meta:
        model = DeliveryAttempt
        fields = (
            "round",
            "channel",
            "transport",
            "outcome",
            "error",
            "provider_message_id",
            "started_at",
            "duration_ms",
            "segments",
            "cost",
        )
        read_only_fields = fields


class NotificationDetailSerializer(NotificationSerializer):
    """A notification with every delivery attempt, oldest first."""

    attempts = DeliveryAttemptSerializer(many=True, read_only=True)


class BatchItemSerializer(serializers.Serializer):
    """One created notification of a batch: its id and where it stands (the rest is what was
    sent; ``GET /api/v1/notifications/{id}`` has it all)."""

    id = serializers.IntegerField(read_only=True)
    user = serializers.IntegerField(source="user_id", read_only=True)
    status = serializers.ChoiceField(choices=Notification.Status.choices, read_only=True)
    send_at = serializers.DateTimeField(read_only=True, allow_null=True)
    expires_at = serializers.DateTimeField(read_only=True, allow_null=True)


class BatchResultSerializer(serializers.Serializer):
    """The notifications created, in the order given."""

    notifications = BatchItemSerializer(many=True)


class NotificationPageSerializer(serializers.Serializer):
    """One page of the list, newest first."""

    next = serializers.URLField(allow_null=True, help_text="The next page (older), or null.")
    previous = serializers.URLField(
        allow_null=True, help_text="The previous page (newer), or null."
    )
    results = NotificationSerializer(many=True)


class ActionResultSerializer(serializers.Serializer):
    """What a cancel or resend did, and the notification now."""

    detail = serializers.CharField(help_text='What was done, e.g. "1 cancelled".')
    notification = NotificationSerializer()


class NotificationFilterSerializer(serializers.Serializer):
    """The list's query parameters."""

    user = UserReferenceField(required=False, help_text="The user's id or username.")
    status = serializers.MultipleChoiceField(
        choices=Notification.Status.choices,
        required=False,
        help_text="One status, or several separated by commas (e.g. `failed,expired`).",
    )
    channel = serializers.ChoiceField(
        choices=Channel.choices, required=False, help_text="The channel that delivered it."
    )
    created_after = serializers.DateTimeField(
        required=False, help_text="Created at or after this time (ISO 8601; UTC if no offset)."
    )
    created_before = serializers.DateTimeField(
        required=False, help_text="Created before this time (ISO 8601; UTC if no offset)."
    )

    def to_internal_value(self, data: Any) -> Any:
        values: dict[str, Any] = {}
        for name in self.fields:
            if name not in data:
                continue
            value = ",".join(data.getlist(name)) if hasattr(data, "getlist") else data[name]
            if name == "user" and isinstance(value, str) and value.isdigit():
                value = int(value) if len(value) < 20 else value
            elif name == "status":
                value = [part.strip() for part in value.split(",") if part.strip()]
            elif name.startswith("created_"):
                # A "+03:00" offset arrives as " 03:00" when the client did not encode the +.
                value = re.sub(r" (\d\d:?\d\d)$", r"+\1", value)
            values[name] = value
        return super().to_internal_value(values)


class ContactSerializer(StrictSerializer):
    """How to reach one user; checked like the admin's contact form."""

    user = serializers.IntegerField(source="user_id", read_only=True)
    username = serializers.CharField(source="user.get_username", read_only=True)
    telegram_chat_id = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Numeric chat id (negative for groups) or @channelusername.",
    )
    email = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Blank: the user account's email address is used.",
    )
    phone = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="A mobile number; stored in international form (+79161234567).",
    )
    telegram_opt_out = serializers.BooleanField(required=False)
    email_opt_out = serializers.BooleanField(required=False)
    sms_opt_out = serializers.BooleanField(required=False)
    language = serializers.ChoiceField(
        choices=["", "ru", "en"],
        required=False,
        allow_blank=True,
        help_text="The language of the templates this user gets; blank: the service's.",
    )
    telegram_blocked = serializers.BooleanField(
        read_only=True, help_text="The user blocked the bot: Telegram is skipped until unblocked."
    )
    effective_email = serializers.CharField(
        read_only=True, help_text="Where email goes: this contact's email, else the account's."
    )
    telegram_invite_link = serializers.SerializerMethodField(
        help_text="A link the user opens to link their Telegram chat (single use; it expires "
        "at `telegram_invite_expires_at`); null when Telegram is not configured."
    )
    telegram_invite_expires_at = serializers.SerializerMethodField()
    updated_at = serializers.DateTimeField(read_only=True)

    def get_telegram_invite_link(self, contact: UserContact) -> str | None:
        invite = self.context.get("invite")
        return invite.url if invite is not None else None

    def get_telegram_invite_expires_at(self, contact: UserContact) -> datetime | None:
        invite = self.context.get("invite")
        return invite.expires_at if invite is not None else None


class ErrorSerializer(serializers.Serializer):
    """The one shape of every error (see ``notifications.api.errors``)."""

    status = serializers.IntegerField(help_text="The HTTP status code.")
    code = serializers.CharField(help_text="A stable word for programs, e.g. `invalid`.")
    detail = serializers.CharField(help_text="One sentence for a person.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per field (dotted for nested ones: `notifications.3.user`).",
    )
