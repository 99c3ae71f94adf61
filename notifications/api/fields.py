"""The API's field types: strict (a string field takes a JSON string, a flag takes true or
false, nothing is coerced), and each one checks exactly what its OpenAPI schema states.

The schema is generated from these fields (drf-spectacular reads their validators: lengths,
and ``RegexValidator`` patterns, written in the dialect both Python and ECMA-262 read: explicit
character classes, no ``\\d`` or ``\\s``, ``\\Z`` served as ``$``). What a schema can't state —
whether a user exists, a time relative to now or to another field, a phone number's numbering
plan — is the services' to check, and the views answer it with 422, not 400.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

MAX_ID = 2**63 - 1
USERNAME_MAX_LENGTH = 150

# What Python's str.strip() strips (str.isspace), spelled out for both regex dialects.
WHITESPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = rf"^[^\x00]*[^\x00{WHITESPACE}][^\x00]*\Z"
NO_NUL = r"^[^\x00]*\Z"
ONE_LINE = r"^[^\r\n\x00]*\Z"
# A Telegram chat id (digits, negative for a group) or @channelusername; blank unlinks.
CHAT_ID = r"^[ \t\r\n]*(?:-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})?[ \t\r\n]*\Z"
# Digits, optionally a leading + and spaces, brackets, dots or dashes; whether it is a mobile
# number is the numbering plan's to say (422).
PHONE = r"^(?:\+?[0-9 ().-]*[0-9][0-9 ().-]*)?\Z"
# An address Django's EmailValidator takes (dot-atom local part; a host name, IDN included,
# or localhost), blank for the account's. The host's characters are letters, digits and what
# lies past U+00A0, spelled as negated classes (which generators and validators read fast).
_HOST_CHAR = r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\xa0]"
_HOST_OR_DASH = r"[^\x00-\x2c\x2e\x2f\x3a-\x40\x5b-\x60\x7b-\xa0]"
_LABEL = rf"{_HOST_CHAR}(?:{_HOST_OR_DASH}{{0,61}}{_HOST_CHAR})?"
_TLD_CHAR = r"[^\x00-\x40\x5b-\x60\x7b-\xa0]"
_TLD_OR_DASH = r"[^\x00-\x2c\x2e-\x40\x5b-\x60\x7b-\xa0]"
_TLD = rf"(?:{_TLD_CHAR}{_TLD_OR_DASH}{{0,61}}{_TLD_CHAR}|xn--[A-Za-z0-9]{{1,59}})"
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
EMAIL = rf"^(?:{_ATOM}(?:\.{_ATOM})*@(?:localhost|{_LABEL}(?:\.{_LABEL})*\.{_TLD}))?\Z"
# A date and time without an offset (a wall time, read in each user's time zone).
LOCAL_TIME = (
    r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?\Z"
)
# A category's key (a slug).
CATEGORY_KEY = r"^[-a-zA-Z0-9_]+\Z"
# An IANA time zone's name (which zones exist is for zoneinfo to say: 422).
ZONE_NAME = r"^(?:[A-Za-z][A-Za-z0-9_+-]{0,29}(?:/[A-Za-z0-9][A-Za-z0-9_+-]{0,29}){0,2})?\Z"
# Quiet hours: two 24-hour times, or off.
_CLOCK = r"(?:[01]?[0-9]|2[0-3]):[0-5][0-9]"
QUIET_HOURS = rf"^(?:off|{_CLOCK}-{_CLOCK})?\Z"
_YEAR = r"(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
# RFC 3339 with its offset (what JSON Schema's date-time means), up to the calendar: a
# 30 February matches and is refused as no date.
DATE_TIME = (
    rf"^({_YEAR})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])(?:\.([0-9]+))?"
    r"(Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])\Z"
)
_DATE_TIME = re.compile(DATE_TIME)
EXAMPLE_TIME = "2026-12-01T09:00:00+03:00"


def pattern(regex: str, message: str) -> RegexValidator:
    return RegexValidator(regex, message=message, code="pattern")


class StrictCharField(serializers.CharField):
    """A JSON string only: a number or a flag is refused, not stored as "12345" or "True".
    Whitespace is kept as sent."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only (not 1, "true" or "yes")."""

    default_error_messages = {"invalid": "Give true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictChoiceField(serializers.ChoiceField):
    """One of the choices, as a JSON string."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID},
            {
                "type": "string",
                "minLength": 1,
                "maxLength": USERNAME_MAX_LENGTH,
                "pattern": NOT_BLANK.replace(r"\Z", "$"),
            },
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
        if len(data) > USERNAME_MAX_LENGTH:
            self.fail("username", reason=f"longer than {USERNAME_MAX_LENGTH} characters")
        if "\x00" in data or re.search("[\ud800-\udfff]", data):
            self.fail("username", reason="it contains a NUL or surrogate character")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


def user_filter(value: str) -> int | str:
    """A user as the list's ``user`` parameter names one: digits naming an id (1 to 2^63-1,
    no leading zero) are the id, anything else a username."""
    if re.fullmatch(r"[1-9][0-9]{0,18}", value) and int(value) <= MAX_ID:
        return int(value)
    return value


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time with its offset (``DATE_TIME``) as an aware datetime, or None when it
    doesn't match or names no date (30 February). Digits past microseconds are dropped."""
    found = _DATE_TIME.match(text)
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = found.groups()
    if offset == "Z":
        zone = UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int((fraction or "0")[:6].ljust(6, "0")), tzinfo=zone,
        )  # fmt: skip
    except ValueError:
        return None


@extend_schema_field(
    {"type": "string", "format": "date-time", "pattern": DATE_TIME.replace(r"\Z", "$")}
)
class AwareDateTimeField(serializers.Field):
    """An RFC 3339 time with its offset (``2026-12-01T09:00:00+03:00`` or ``…Z``), kept in
    that offset (how far it may be from now is a rule, checked by the view)."""

    default_error_messages = {
        "invalid": f"Give the time with its offset, e.g. {EXAMPLE_TIME} or "
        "2026-12-01T06:00:00Z (in a URL, encode + as %2B).",
        "date": "{value!r} names no date.",
    }

    def to_internal_value(self, data: Any) -> datetime:
        if not isinstance(data, str) or not _DATE_TIME.match(data):
            self.fail("invalid")
        parsed = parse_time(data)
        if parsed is None:
            self.fail("date", value=data)
        return parsed

    def to_representation(self, value: datetime) -> str:
        return serializers.DateTimeField().to_representation(value)


def utc_clamped(moment: datetime) -> datetime:
    """``moment`` in UTC; the first or last representable moment when it lies beyond them
    (``0001-01-01T00:00:00+14:00``), as a bound of a range means the same."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if moment.year == 1 else datetime.max
        return edge.replace(tzinfo=UTC)


@extend_schema_field(
    {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Channel"},
        "uniqueItems": True,
        "maxItems": 3,
        "nullable": True,
    }
)
class ChannelListField(serializers.ListField):
    """Channels in the order to try, each at most once."""

    default_error_messages = {"duplicate": "Name each channel at most once."}

    def to_internal_value(self, data: Any) -> list[str]:
        channels = super().to_internal_value(data)
        if len(set(channels)) != len(channels):
            self.fail("duplicate")
        return channels


LANGUAGES = ["", "ru", "en"]


class LanguageField(StrictChoiceField):
    """``ru``, ``en``, or blank for the service's language (the schema's ``Language``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=LANGUAGES, allow_blank=True, **kwargs)
