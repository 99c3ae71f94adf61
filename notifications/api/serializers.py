"""What the API reads and writes. Input serializers check what the OpenAPI schema states —
types (strictly: a string field takes a JSON string), lengths, patterns, choices — and a
failure there is a 400. The rules a schema can't state (an unknown user, an expiry before
the send time, a time more than 100 years away, a phone number that is not a mobile) are the
services' and the models', checked after, and answered with 422 and the same messages as
``notification_create`` and the admin (see ``notifications.api.fields``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from notifications.api.fields import (
    CATEGORY_KEY,
    CHAT_ID,
    EMAIL,
    LOCAL_TIME,
    NO_NUL,
    NOT_BLANK,
    ONE_LINE,
    PHONE,
    QUIET_HOURS,
    USERNAME_MAX_LENGTH,
    ZONE_NAME,
    AwareDateTimeField,
    ChannelListField,
    LanguageField,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    UserReferenceField,
    pattern,
)
from notifications.models import Channel, DeliveryAttempt, Notification, UserContact
from notifications.validators import validate_message

User = get_user_model()
BATCH_MAX = 1000
# A send or expiry time further away than this is a mistake, not a plan.
FURTHEST_YEARS = 100
SUBJECT_ONE_LINE = "The subject must be one line: remove the line breaks."


class StrictSerializer(serializers.Serializer):
    """Refuses fields it doesn't know, and fields it only shows, so a typo ("subjet") or a
    read-only field sent back ("telegram_blocked") is an error, not silently ignored."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            known = ", ".join(name for name in self.fields if name in writable)
            errors = {
                name: [
                    "This field is read-only; leave it out."
                    if name in self.fields
                    else f"Unknown field; the fields are {known}."
                ]
                for name in sorted(set(data) - writable)
            }
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def _own_nul_check(field: serializers.CharField) -> serializers.CharField:
    """``field`` without DRF's NUL check, where its own validator says it (one message)."""
    field.validators = [
        v for v in field.validators if not isinstance(v, ProhibitNullCharactersValidator)
    ]
    return field


class MessageField(StrictCharField):
    """The text to send: not blank, no NUL, at most NOTIFY_MESSAGE_MAX_LENGTH characters
    (read when checked, and when the schema is served)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "error_messages", {"blank": "The message is empty; write something to send."}
        )
        super().__init__(validators=[validate_message], **kwargs)
        _own_nul_check(self)


class MessageFieldSchema(OpenApiSerializerFieldExtension):
    target_class = "notifications.api.serializers.MessageField"

    def map_serializer_field(self, auto_schema, direction) -> dict:
        return {
            "type": "string",
            "minLength": 1,
            "maxLength": settings.NOTIFY_MESSAGE_MAX_LENGTH,
            "pattern": NOT_BLANK.replace(r"\Z", "$"),
            "description": self.target.help_text or "",
        }


class NotificationCreateSerializer(StrictSerializer):
    """A notification to create (unknown fields are refused)."""

    user = UserReferenceField()
    message = MessageField(
        help_text="The text to send: not blank, no NUL characters, at most "
        "NOTIFY_MESSAGE_MAX_LENGTH characters.",
    )
    subject = _own_nul_check(
        StrictCharField(
            required=False,
            allow_blank=True,
            max_length=200,
            validators=[pattern(ONE_LINE, SUBJECT_ONE_LINE)],
            help_text="Email subject, one line (no line breaks or NUL characters); a default is "
            "used when blank.",
        )
    )
    channels = ChannelListField(
        child=StrictChoiceField(choices=Channel.choices),
        required=False,
        allow_null=True,
        max_length=len(Channel.choices),
        help_text="Channels to try, in order, each at most once, for this notification only; "
        "default (null or empty): all, in the service's order (NOTIFY_CHANNEL_ORDER).",
    )
    send_at = AwareDateTimeField(
        required=False,
        allow_null=True,
        help_text="Not sent before this time: a future time gives status `scheduled`. At most "
        f"{FURTHEST_YEARS} years from now (else 422).",
    )
    expires_at = AwareDateTimeField(
        required=False,
        allow_null=True,
        help_text="Never delivered after this time (it ends `expired`); default: "
        "NOTIFY_MESSAGE_TTL after it is due. Must be after the time it is sent and at most "
        f"{FURTHEST_YEARS} years from now (else 422).",
    )
    send_at_local = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=19,
        validators=[
            pattern(LOCAL_TIME, "Give a date and time without an offset, e.g. 2026-12-07T10:00.")
        ],
        help_text="Not sent before this date and time on the user's own clock (their time zone, "
        "else the service's): `2026-12-07T10:00` is 10:00 in Berlin for a user in Berlin. "
        "Instead of `send_at` (both: 422).",
    )
    category = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=50,
        validators=[pattern(CATEGORY_KEY, "Give a category's key: letters, digits, - and _.")],
        help_text="What it is about (`GET /api/v1/categories`): the user's choices for it, "
        "their quiet hours and its caps apply unless it is required. Default: the default "
        "category. A key no category has gets 422.",
    )
    digest_key = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=200,
        validators=[pattern(NO_NUL, "The digest key contains a NUL character.")],
        help_text="Collected with the user's other notifications of this key and category into "
        "one digest, sent at the end of the category's digest window (status `batched` till "
        "then). A category without a digest window gets 422.",
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
    # The field itself, not get_username(): DRF inspects a method's signature on every row.
    username = serializers.CharField(source=f"user.{User.USERNAME_FIELD}", read_only=True)
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
    category = serializers.CharField(
        source="category.key",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="Its category's key; null: the default category.",
    )
    digest_key = serializers.CharField(read_only=True)
    digest = serializers.IntegerField(
        source="digest_id",
        read_only=True,
        allow_null=True,
        help_text="The digest that carries (or carried) it, when it was collected into one.",
    )


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


STATUS_LIST = {
    "type": "array",
    "minItems": 1,
    "items": {"$ref": "#/components/schemas/NotificationStatus"},
}


@extend_schema_field(STATUS_LIST)
class StatusListField(serializers.Field):
    """One status, or several separated by commas (``failed,expired``). Not blank: in a
    query an empty list and a list of one blank status read the same, so the schema asks
    for at least one."""

    default_error_messages = {
        "invalid": "{value!r} is not a status; the statuses are {known}.",
    }

    def to_internal_value(self, data: Any) -> list[str]:
        if not isinstance(data, str):
            self.fail("invalid", value=data, known="")
        known = Notification.Status.values
        statuses = data.split(",")
        for status in statuses:
            if status not in known:
                self.fail("invalid", value=status, known=", ".join(known))
        return sorted(set(statuses))


class NotificationFilterSerializer(serializers.Serializer):
    """The list's query parameters (``limit`` and ``cursor`` are the paginator's)."""

    user = _own_nul_check(
        StrictCharField(
            required=False,
            max_length=USERNAME_MAX_LENGTH,
            validators=[pattern(NO_NUL, "Not a username: it contains a NUL character.")],
            help_text="The user's id (digits: 1 to 2^63-1, no leading zero) or username.",
        )
    )
    status = StatusListField(
        required=False,
        help_text="One status, or several separated by commas (e.g. `failed,expired`).",
    )
    channel = StrictChoiceField(
        choices=Channel.choices, required=False, help_text="The channel that delivered it."
    )
    created_after = AwareDateTimeField(
        required=False, help_text="Created at or after this time (RFC 3339, with its offset)."
    )
    created_before = AwareDateTimeField(
        required=False, help_text="Created before this time (RFC 3339, with its offset)."
    )

    def to_internal_value(self, data: Any) -> Any:
        values: dict[str, Any] = {}
        for name in self.fields:
            if name not in data:
                continue
            values[name] = ",".join(data.getlist(name)) if hasattr(data, "getlist") else data[name]
        return super().to_internal_value(values)


class ContactSerializer(StrictSerializer):
    """How to reach one user; checked like the admin's contact form. Only the fields given
    are changed."""

    user = serializers.IntegerField(source="user_id", read_only=True)
    username = serializers.CharField(source="user.get_username", read_only=True)
    telegram_chat_id = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=UserContact._meta.get_field("telegram_chat_id").max_length,
        validators=[
            pattern(
                CHAT_ID,
                "Enter a numeric Telegram chat id (e.g. 123456789, or -100… for a group) or a "
                "channel username such as @my_channel.",
            )
        ],
        help_text="Numeric chat id (negative for groups) or @channelusername; blank unlinks. "
        "A new chat clears the bot-blocked mark. To let the user link their own chat, "
        "`POST …/contact/invite`.",
    )
    email = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=UserContact._meta.get_field("email").max_length,
        validators=[pattern(EMAIL, "Enter a valid email address.")],
        help_text="Blank: the user account's email address is used.",
    )
    phone = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=UserContact._meta.get_field("phone").max_length,
        validators=[
            pattern(
                PHONE,
                "Enter a phone number: digits, with an optional leading + and spaces, "
                "brackets, dots or dashes, e.g. +79161234567.",
            )
        ],
        help_text="A mobile number (else 422); stored in international form (+79161234567).",
    )
    telegram_opt_out = StrictBooleanField(required=False)
    email_opt_out = StrictBooleanField(required=False)
    sms_opt_out = StrictBooleanField(required=False)
    language = LanguageField(
        required=False,
        help_text="The language of the templates this user gets; blank: the service's.",
    )
    timezone = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=UserContact._meta.get_field("timezone").max_length,
        validators=[
            pattern(
                ZONE_NAME,
                "Enter an IANA time zone name such as Europe/Berlin, or nothing.",
            )
        ],
        help_text="The user's IANA time zone (Europe/Berlin): quiet hours and local-time "
        "campaigns follow it; blank: the service's. A name no zone has gets 422.",
    )
    quiet_hours = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=UserContact._meta.get_field("quiet_hours").max_length,
        validators=[
            pattern(
                QUIET_HOURS,
                "Enter two 24-hour times such as 22:00-08:00, or off, or nothing.",
            )
        ],
        help_text="22:00-08:00 in the user's time zone: notifications that are not required "
        "wait until they end; `off`: none; blank: the service's (NOTIFY_QUIET_HOURS). The "
        "same time twice gets 422.",
    )
    telegram_blocked = serializers.BooleanField(
        read_only=True,
        help_text="The user blocked the bot: Telegram is skipped until they unblock it or "
        "link a new chat.",
    )
    effective_email = serializers.CharField(
        read_only=True, help_text="Where email goes: this contact's email, else the account's."
    )
    updated_at = serializers.DateTimeField(read_only=True)


class InviteSerializer(serializers.Serializer):
    """A link that links the Telegram chat of whoever opens it to this contact."""

    url = serializers.URLField(
        read_only=True,
        help_text="https://t.me/<bot>?start=<token>: single use, and it stops working once "
        "any of the contact's links is used.",
    )
    expires_at = serializers.DateTimeField(read_only=True, help_text="It works until then.")


class ErrorSerializer(serializers.Serializer):
    """The one shape of every error (see ``notifications.api.errors``)."""

    status = serializers.IntegerField(help_text="The HTTP status code.")
    code = serializers.CharField(help_text="A stable word for programs, e.g. `invalid`.")
    detail = serializers.CharField(help_text="One sentence for a person.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per field (dotted for nested ones: `notifications.3.user`).",
    )
