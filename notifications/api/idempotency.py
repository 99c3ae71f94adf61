"""``Idempotency-Key``: a request repeated with the same key gets the first one's response.

A key seen before is answered from its row (``ApiIdempotencyKey``) without doing anything.
A new key's row, with the response, is inserted in the same transaction as the work it
guards, at its end. Of concurrent requests with the same key, the first to commit wins; the
others' INSERTs wait on the unique index until it has (PostgreSQL; SQLite's ``BEGIN
IMMEDIATE`` serialises writers anyway), fail, roll their own work back and answer the stored
response: 20 identical requests at once make one notification and get one answer. A request
that failed (4xx) leaves no row, so the client may correct it and try the same key again. The same
key with a different method, path or body gets 409. Keys are scoped to the caller (its API
key, or its staff account) and kept ``NOTIFY_API_IDEMPOTENCY_HOURS`` (at least 24 h).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from django.db import IntegrityError, transaction
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from notifications.api.auth import client_of
from notifications.api.errors import Conflict
from notifications.api.parsers import canonical
from notifications.models import ApiIdempotencyKey

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")


def fingerprint(request: Request) -> str:
    """A hash of what the request asks: method, path and body (key order and spacing of the
    JSON don't matter)."""
    text = f"{request.method} {request.path}\n{canonical(request.data)}"
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()


def _replay(seen: ApiIdempotencyKey, asked: str) -> Response:
    if seen.fingerprint != asked:
        raise Conflict(
            "This Idempotency-Key was used for a different request (another method, path or "
            "body); use a new key for a new request.",
            code="idempotency_key_reused",
        )
    stored = seen.response or {}
    response = Response(stored.get("body"), status=seen.status_code)
    for name, value in stored.get("headers", {}).items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(request: Request, handle: Callable[[], Response]) -> Response:
    """``handle()``'s response, or, for a key seen before, the response it got then."""
    key = request.headers.get(HEADER)
    if key is None:
        return handle()
    if not _KEY.match(key):
        raise exceptions.ValidationError(
            {HEADER: ["Use 1 to 255 printable ASCII characters (a UUID is a good key)."]}
        )
    client = client_of(request) or "anonymous"
    asked = fingerprint(request)
    seen = ApiIdempotencyKey.objects.filter(client=client, key=key).first()
    if seen is not None:  # a retry: answered without doing anything
        return _replay(seen, asked)
    try:
        with transaction.atomic():
            response = handle()
            if response.status_code >= 400:
                transaction.set_rollback(True)
                return response
            headers = {name: response[name] for name in ("Location",) if response.has_header(name)}
            ApiIdempotencyKey.objects.create(
                client=client,
                key=key,
                fingerprint=asked,
                status_code=response.status_code,
                response={"body": response.data, "headers": headers},
            )
    except IntegrityError:
        # The same key was stored first by a concurrent request (this INSERT waited on the
        # unique index until that one committed): this one's work is rolled back.
        seen = ApiIdempotencyKey.objects.filter(client=client, key=key).first()
        if seen is None:
            raise
        return _replay(seen, asked)
    return response
