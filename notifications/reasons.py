"""Failure reasons: an attempt's error with what changes from one recipient or one try to
the next taken out, so that the dashboard counts "550 5.1.1 <…>: Recipient address rejected"
once, not once per address.

Taken out, in this order: email addresses (``<email>``), URLs (``<url>``), phone numbers
written with a ``+`` (``<phone>``), UUIDs and ids that mix letters and digits (``<id>``), and
every other number (``#``). Kept: the words, and the status codes that name the reason —
SMTP, HTTP and Telegram statuses from 400 to 599 where a status stands, and enhanced mail
codes such as ``5.1.1``.

``reason_of`` is what an attempt stores (``DeliveryAttempt.reason``) and what the dashboard
computes for a row that has none (one written before the column existed): the same function,
so both group alike. It is idempotent: a reason is its own reason.
"""

from __future__ import annotations

import re

# The longest reason, and the most of an error that is read to make one (as the dashboard
# has always cut them: its rollup keeps 200 characters).
MAX_LENGTH = 200

_EMAIL = re.compile(r"<?[^\s<>()\[\]{},;:'\"`]+@[^\s<>()\[\]{},;:'\"`]+>?")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s<>()\[\]{}'\"`]+", re.IGNORECASE)
_PHONE = re.compile(r"\+\d[\d ()-]{5,}\d")
_UUID = re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b", re.IGNORECASE)
# A token of six or more letters and digits with at least one of each (a message id, a
# queue id, a token), not a word and not a number.
_MIXED_ID = re.compile(r"\b(?=[A-Za-z_]*\d)(?=\d*[A-Za-z])[A-Za-z0-9_]{6,}\b")
# Kept: an enhanced mail status code anywhere (5.1.1), and a three-digit status from 400 to
# 599 where a status stands: first, after ": " or "; " (an SMTP reply), after "HTTP",
# "status" or "code", or before a colon ("Telegram 403: …"). Any other number goes.
_NUMBER = re.compile(
    r"(?P<keep>(?<![\d.])[245](?:\.\d{1,3}){2}(?!\.?\d)"
    r"|(?:^|(?<=: )|(?<=; )|(?<=\bhttp )|(?<=\bstatus )|(?<=\bcode ))[45]\d\d(?!\.?\d)"
    r"|(?<![\d.:])[45]\d\d(?=:))"
    r"|(?<![a-z0-9])\d+(?:[.,]\d+)*",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")


def _number(match: re.Match) -> str:
    return match.group("keep") or "#"


def normalize(text: str) -> str:
    """``text`` with addresses, ids and numbers replaced by placeholders (see the module)."""
    text = _EMAIL.sub("<email>", text)
    text = _URL.sub("<url>", text)
    text = _PHONE.sub("<phone>", text)
    text = _UUID.sub("<id>", text)
    text = _MIXED_ID.sub("<id>", text)
    text = _NUMBER.sub(_number, text)
    return _SPACES.sub(" ", text).strip()


def reason_of(error: str) -> str:
    """The reason of an attempt's ``error`` (its first ``MAX_LENGTH`` characters,
    normalized, at most ``MAX_LENGTH`` long); "" for no error."""
    return normalize(error[:MAX_LENGTH])[:MAX_LENGTH] if error else ""
