"""Validation and normalisation of what operators and developers type in."""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

_CHAT_ID = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
_MOBILE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}


def validate_telegram_chat_id(value: str) -> None:
    """A numeric chat id (negative for groups) or a public @channelusername."""
    if value and not _CHAT_ID.match(value.strip()):
        raise ValidationError(
            _(
                "Enter a numeric Telegram chat id (e.g. 123456789, or -100… for a group) "
                "or a channel username such as @my_channel."
            ),
            code="invalid_chat_id",
        )


def parse_mobile(value: str) -> phonenumbers.PhoneNumber:
    """The parsed number; raises ``ValidationError`` unless it is a valid mobile number.

    Numbers without a leading + are read in ``NOTIFY_DEFAULT_REGION`` (default RU).
    """
    try:
        number = phonenumbers.parse(value, settings.NOTIFY_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            _("%(value)r is not a phone number. Enter it in international form, e.g. +79161234567.")
            % {"value": value},
            code="invalid_phone",
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _(
                "%(value)r is not a valid phone number. Enter it in international form, "
                "e.g. +79161234567."
            )
            % {"value": value},
            code="invalid_phone",
        )
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise ValidationError(
            _("%(value)r is not a mobile number, so it cannot receive SMS.") % {"value": value},
            code="not_mobile",
        )
    return number


def validate_phone(value: str) -> None:
    if value:
        parse_mobile(value)


def normalize_phone(value: str) -> str:
    """The E.164 form (+79161234567) of a valid mobile number; raises ``ValidationError``."""
    return phonenumbers.format_number(parse_mobile(value), phonenumbers.PhoneNumberFormat.E164)


def validate_message(value: str) -> None:
    """Not blank, no NUL characters, at most ``NOTIFY_MESSAGE_MAX_LENGTH`` characters."""
    if not value or not value.strip():
        raise ValidationError(_("The message is empty; write something to send."), code="empty")
    if "\x00" in value:
        raise ValidationError(
            _(
                "The message contains a NUL character (\\x00), which no channel can carry; remove it."
            ),
            code="nul",
        )
    limit = settings.NOTIFY_MESSAGE_MAX_LENGTH
    if len(value) > limit:
        raise ValidationError(
            _(
                "The message is %(length)s characters long; at most %(limit)s are allowed "
                "(NOTIFY_MESSAGE_MAX_LENGTH)."
            )
            % {"length": f"{len(value):,}", "limit": f"{limit:,}"},
            code="too_long",
        )


def validate_subject(value: str) -> None:
    """One line: no line breaks or NUL characters (a mail header can't carry them)."""
    if any(ch in value for ch in "\r\n\x00"):
        raise ValidationError(
            _("The subject must be one line: remove the line breaks."), code="multiline"
        )
