"""Standard Webhooks signatures (https://www.standardwebhooks.com): ``whsec_`` secrets —
made, checked, masked — and the three headers of a signed message.

A secret is ``whsec_`` and the base64 of 24 to 64 random bytes; the HMAC key is those bytes.
A message carries ``webhook-id`` (the same on every retry of it), ``webhook-timestamp`` (Unix
seconds of this try) and ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of
"<id>.<timestamp>.<body>">``, one per secret, space-separated, so that a receiver verifying
with either the old or the new secret accepts it while a secret rotates.

A secret is shown in full only to whoever makes it; everywhere else (the admin's pages and
lists, the API's answers, logs) it is ``masked``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as random_source
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

PREFIX = "whsec_"
SECRET_BYTES = 24  # what a new secret holds (as Svix's): 32 base64 characters, no padding
_B64 = "[A-Za-z0-9+/]"
# whsec_ + base64 of 24 to 64 bytes: 8 to 20 groups of four, then what may end it.
SECRET_PATTERN = (
    rf"^whsec_(?:{_B64}{{4}}){{8,20}}"
    rf"(?:{_B64}{{2}}==|{_B64}{{3}}=|{_B64}{{4}}(?:{_B64}{{2}}==)?)?\Z"
)
_SECRET = re.compile(SECRET_PATTERN)
SECRET_RULE = _(
    "A secret is whsec_ followed by the base64 of 24 to 64 random bytes, e.g. "
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw; leave it blank to have one made."
)


def secret_make() -> str:
    """A new random secret."""
    return PREFIX + base64.b64encode(random_source.token_bytes(SECRET_BYTES)).decode("ascii")


def validate_secret(value: str) -> None:
    """Raises ``ValidationError`` (code ``secret``) unless ``value`` is a ``whsec_`` secret."""
    if not isinstance(value, str) or not _SECRET.match(value):
        raise ValidationError(SECRET_RULE, code="secret")


def masked(secret: str) -> str:
    """``whsec_…AbCd``: enough to tell two secrets apart, not to use one."""
    return f"{PREFIX}…{secret[-4:]}" if secret else ""


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a whsec_ secret") from None


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``id.timestamp.body`` with ``secret``'s key."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(message_id: str, timestamp: int, body: bytes, secrets: Iterable[str]) -> dict[str, str]:
    """The Standard Webhooks headers of one try: a signature per secret (the current one
    first)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, message_id, timestamp, body) for s in secrets),
    }
