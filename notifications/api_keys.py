"""API keys of the client applications that call the HTTP API: make, check, revoke.

A key reads ``nsk_`` + 12 hex characters (its ``prefix``, which finds its row and names it in
lists) + 43 URL-safe characters (256 random bits). Only a salted SHA-256 of the whole key is
stored: the key has far more entropy than any password, so a fast hash is enough, and the
comparison takes constant time. The key is shown once, by whoever makes it (the admin's
add page, ``manage.py create_api_key``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from notifications.models import ApiKey

KEY_START = "nsk_"
PREFIX_LENGTH = 12
_KEY = re.compile(r"^nsk_([0-9a-f]{12})([A-Za-z0-9_-]{43})$")
# last_used_at is written at most this often per key, not on every request.
TOUCH_EVERY = timedelta(minutes=1)


class InvalidKey(Exception):
    """The key is unknown, malformed or revoked; the message says which, for the client."""


def _hash(salt: str, key: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + key.encode("ascii")).hexdigest()


def api_key_create(*, name: str, scope: str = ApiKey.Scope.WRITE) -> tuple[ApiKey, str]:
    """A new key named ``name`` with ``scope`` (read or write): the row and the key itself,
    which is not stored and can't be shown again. Raises ``ValidationError``."""
    key = ApiKey(name=(name or "").strip(), scope=scope)
    key.full_clean(exclude=["prefix", "salt", "key_hash"])
    for _attempt in range(5):  # a prefix collision (48 random bits) is very unlikely, but possible
        prefix = secrets.token_hex(PREFIX_LENGTH // 2)
        raw = f"{KEY_START}{prefix}{secrets.token_urlsafe(32)}"
        key.prefix = prefix
        key.salt = secrets.token_hex(16)
        key.key_hash = _hash(key.salt, raw)
        try:
            with transaction.atomic():
                key.save()
        except IntegrityError:
            key.pk = None
            continue
        return key, raw
    raise ValidationError(_("Could not make a unique key prefix; try again."))


def api_keys_revoke(*, queryset: QuerySet[ApiKey]) -> int:
    """Revoke the keys of ``queryset`` that are still active; how many were."""
    return queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_key_authenticate(raw: str) -> ApiKey:
    """The active key ``raw`` is; raises ``InvalidKey``. Notes the use (at most once a
    minute per key)."""
    match = _KEY.match(raw or "")
    if match is None:
        raise InvalidKey("Malformed API key: expected nsk_ followed by 55 characters.")
    key = ApiKey.objects.filter(prefix=match.group(1)).first()
    # Hash even when no row matched, so an unknown prefix takes as long as a wrong secret.
    expected = key.key_hash if key is not None else "0" * 64
    actual = _hash(key.salt if key is not None else "00" * 16, raw)
    if key is None or not hmac.compare_digest(expected, actual):
        raise InvalidKey("Unknown API key.")
    if key.revoked_at is not None:
        raise InvalidKey("This API key was revoked.")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= TOUCH_EVERY:
        ApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - TOUCH_EVERY)
        ).update(last_used_at=now)
        key.last_used_at = now
    return key
