"""The API of the recipients' control: each user's preferences (category × channel, on or
off) and the categories they choose from.

``GET /api/v1/users/{id}/preferences`` lists every category with the user's state on each
channel: the choosable ones as ``notifications.preferences.services.states_of`` has them, and
the required ones read-only (``required: true``, every channel on, nothing chosen: they are
sent whatever the user chose). ``PUT`` changes only the categories and channels it names,
through ``preferences_update``, all or nothing. ``GET /api/v1/categories`` lists the
categories with their rules, so clients know the keys.

What the schema states is checked first (400: a channel outside the enum, a value that is not
true or false); then the rules it can't (422: no category with that key, a required one).
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from notifications import selectors
from notifications.api.errors import Unprocessable
from notifications.api.fields import MAX_ID
from notifications.api.idempotency import idempotent
from notifications.api.serializers import StrictSerializer
from notifications.api.views import IDEMPOTENCY_PARAMETER, ApiView
from notifications.models import Channel, UserContact
from notifications.preferences.models import Category
from notifications.preferences.services import CategoryState, preferences_update, states_of
from notifications.rendering import default_language

# At most this many categories in one update (there are a handful; this bounds a query).
UPDATE_MAX = 1000
# What a category key can be (a slug); any other name is no category, unasked.
KEY = re.compile(r"^[-a-zA-Z0-9_]{1,50}\Z")
NO_CATEGORY = "There is no category with the key %(key)r."

CHANNEL_SWITCHES = {
    "type": "object",
    "properties": {channel: {"type": "boolean"} for channel in Channel.values},
    "additionalProperties": False,
}


@extend_schema_field({"type": "string", "pattern": "^[-a-zA-Z0-9_]+$", "maxLength": 50})
class CategoryKeyField(serializers.CharField):
    """A category's key: a slug (letters, digits, - and _), at most 50 characters."""


@extend_schema_field(
    {
        **CHANNEL_SWITCHES,
        "required": list(Channel.values),
        "description": "Each channel: whether this user gets the category on it.",
    }
)
class ChannelStatesField(serializers.ReadOnlyField):
    """``{"telegram": true, "email": false, "sms": true}``."""


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": UPDATE_MAX,
        "additionalProperties": {
            **CHANNEL_SWITCHES,
            "description": 'The channels to change, e.g. {"email": false}.',
        },
        "description": "Category key → the channels to turn on (true) or off (false), e.g. "
        '{"promotions": {"email": false}}. Categories and channels not named keep their state. '
        "A key names a category of `GET /api/v1/categories` (a slug: letters, digits, - and "
        "_, at most 50 characters); any other key gets 422.",
    }
)
class CategoryChangesField(serializers.Field):
    """``{category key: {channel: true or false}}``; the keys are checked by the view (422)."""

    default_error_messages = {
        "invalid": "Give an object of categories, each an object of channels, e.g. "
        '{"promotions": {"email": false}}.',
        "too_many": f"Change at most {UPDATE_MAX} categories at once.",
        "channels": 'Give an object of channels, e.g. {"email": false}.',
        "channel": "Unknown channel; the channels are telegram, email and sms.",
        "flag": "Give true or false.",
    }

    def to_internal_value(self, data: Any) -> dict[str, dict[str, bool]]:
        # Raised as they are, not with ``fail``: the messages hold braces.
        if not isinstance(data, dict):
            raise serializers.ValidationError(self.error_messages["invalid"], code="invalid")
        if len(data) > UPDATE_MAX:
            raise serializers.ValidationError(self.error_messages["too_many"], code="too_many")
        errors: dict[str, Any] = {}
        for key, channels in data.items():
            if not isinstance(channels, dict):
                errors[key] = [self.error_messages["channels"]]
                continue
            problems = {
                channel: [
                    self.error_messages["channel" if channel not in Channel.values else "flag"]
                ]
                for channel, enabled in channels.items()
                if channel not in Channel.values or not isinstance(enabled, bool)
            }
            if problems:
                errors[key] = problems
        if errors:
            raise serializers.ValidationError(errors)
        return data


class PreferencesUpdateSerializer(StrictSerializer):
    """The categories and channels to change; the rest keep their state."""

    categories = CategoryChangesField()


class CategoryPreferenceSerializer(serializers.Serializer):
    """One category as the user has it."""

    key = CategoryKeyField(help_text="The category's key, e.g. promotions.")
    name = serializers.CharField(help_text="In the user's language (else English).")
    description = serializers.CharField(help_text="In the user's language (else English).")
    required = serializers.BooleanField(
        help_text="Sent whatever the user chose (login codes, receipts): every channel on, "
        "and not a choice (a PUT naming it gets 422)."
    )
    opt_in = serializers.BooleanField(
        help_text="Off until the user turns it on (else on until they turn it off)."
    )
    channels = ChannelStatesField()
    chosen = serializers.ListField(
        child=serializers.ChoiceField(choices=Channel.choices),
        help_text="The channels the user set themselves; the others follow the category's default.",
    )


class UserPreferencesSerializer(serializers.Serializer):
    """A user's preferences: the required categories first, then the choosable ones."""

    user = serializers.IntegerField(help_text="The user's id.")
    categories = CategoryPreferenceSerializer(many=True)


class CategoryTextsSerializer(serializers.Serializer):
    en = serializers.CharField(help_text="English.")
    ru = serializers.CharField(help_text="Russian; blank: the English one is used.")


class CategoryCapSerializer(serializers.Serializer):
    """At most ``count`` notifications of the category per user per ``window_seconds``."""

    count = serializers.IntegerField()
    window_seconds = serializers.IntegerField(help_text="The window, in whole seconds.")
    over_cap = serializers.ChoiceField(
        choices=Category.OverCap.choices,
        help_text="Past the cap: `defer` (wait until the window allows) or `skip`.",
    )


class CategorySerializer(serializers.Serializer):
    """A category and the rules of its sending."""

    key = CategoryKeyField(help_text="What notifications and the preferences name it by.")
    names = CategoryTextsSerializer()
    descriptions = CategoryTextsSerializer()
    required = serializers.BooleanField(help_text="Sent whatever users chose; not a choice.")
    opt_in = serializers.BooleanField(help_text="Users start with it off.")
    default_channels = serializers.ListField(
        child=serializers.ChoiceField(choices=Channel.choices),
        help_text="The channels users start with; empty: every channel.",
    )
    cap = CategoryCapSerializer(allow_null=True, help_text="null: no cap.")
    digest_window_seconds = serializers.IntegerField(
        allow_null=True,
        help_text="Notifications with a digest key are collected this long, then sent as one; "
        "null: no digests.",
    )
    default = serializers.BooleanField(help_text="The category of notifications that name none.")


class CategoryListSerializer(serializers.Serializer):
    categories = CategorySerializer(many=True)


def _contact(pk: int) -> UserContact:
    """The user's contact (unsaved if they have none); 404 for no such user."""
    contact = selectors.contact_of(pk) if pk <= MAX_ID else None
    if contact is None:
        raise exceptions.NotFound(f"No user {pk}.")
    return contact


def _entry(category: Category, language: str, state: CategoryState | None) -> dict[str, Any]:
    channels = state.channels if state else dict.fromkeys(settings.CHANNELS, True)
    return {
        "key": category.key,
        "name": category.name(language),
        "description": category.description(language),
        "required": category.required,
        "opt_in": category.opt_in,
        "channels": dict(channels),
        "chosen": [c for c in settings.CHANNELS if state and c in state.chosen],
    }


def preferences_answer(contact: UserContact, states: list[CategoryState] | None = None) -> dict:
    """The body of both operations: the required categories, then ``states`` (the user's
    choosable ones, read when not given)."""
    user: AbstractBaseUser = contact.user
    language = contact.language or default_language()
    required = Category.objects.filter(required=True).order_by("name_en", "pk")
    states = states_of(user) if states is None else states
    entries = [_entry(category, language, None) for category in required]
    entries += [_entry(state.category, language, state) for state in states]
    return {"user": user.pk, "categories": entries}


class PreferencesView(ApiView):
    """One user's preferences."""

    read_perms = ("preferences.view_preference",)
    write_perms = ("preferences.change_preference",)

    @extend_schema(
        operation_id="users_preferences_retrieve",
        responses=UserPreferencesSerializer,
        description="Every category with this user's state on each channel: the required ones "
        "first (read-only: every channel on, nothing chosen), then those the user chooses. "
        "`chosen` lists the channels the user set; the others follow the category's default "
        "(an opt-in category starts off). The contact's opt-outs (`…_opt_out`) still apply "
        "on top.",
    )
    def get(self, request: Request, pk: int) -> Response:
        return Response(preferences_answer(_contact(pk)))

    @extend_schema(
        operation_id="users_preferences_update",
        request=PreferencesUpdateSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses=UserPreferencesSerializer,
        description="Turn channels of categories on or off for this user; only the ones named "
        "change, and a repeat changes nothing more. All or nothing: 400 when the body breaks "
        "its schema (a channel other than telegram, email and sms, a value other than true or "
        "false), 422 naming each category that doesn't exist or is required (under "
        "`categories.<key>`). Answers the user's preferences as `GET` does.",
    )
    def put(self, request: Request, pk: int) -> Response:
        return idempotent(request, lambda: self._update(request, pk))

    def _update(self, request: Request, pk: int) -> Response:
        given = PreferencesUpdateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        changes = given.validated_data["categories"]
        contact = _contact(pk)
        unknown = {key: [NO_CATEGORY % {"key": key}] for key in changes if not KEY.match(key)}
        if unknown:
            raise Unprocessable({"categories": unknown})
        try:
            states = preferences_update(user=contact.user, changes=changes)
        except DjangoValidationError as err:
            raise Unprocessable({"categories": as_serializer_error(err)}) from None
        return Response(preferences_answer(contact, states))


class CategoriesView(ApiView):
    """The categories users choose from, and the required ones."""

    read_perms = ("preferences.view_category",)
    write_perms = ("preferences.change_category",)

    @extend_schema(
        operation_id="categories_list",
        responses=CategoryListSerializer,
        description="Every category, required ones first: the keys notifications and "
        "preferences name, their names and descriptions in English and Russian, and their "
        "rules (opt-in, default channels, cap, digest window). Categories are made in the "
        "admin.",
    )
    def get(self, request: Request) -> Response:
        categories = Category.objects.order_by("-required", "name_en", "pk")
        return Response({"categories": [_category(c) for c in categories]})


def _seconds(duration: timedelta) -> int:
    return math.ceil(duration.total_seconds())


def _category(category: Category) -> dict[str, Any]:
    cap = None
    if category.cap_count is not None and category.cap_window is not None:
        cap = {
            "count": category.cap_count,
            "window_seconds": _seconds(category.cap_window),
            "over_cap": category.over_cap,
        }
    digest = category.digest_window
    return {
        "key": category.key,
        "names": {"en": category.name_en, "ru": category.name_ru},
        "descriptions": {"en": category.description_en, "ru": category.description_ru},
        "required": category.required,
        "opt_in": category.opt_in,
        "default_channels": [c for c in Channel.values if c in (category.default_channels or [])],
        "cap": cap,
        "digest_window_seconds": _seconds(digest) if digest is not None else None,
        "default": category.is_default,
    }
