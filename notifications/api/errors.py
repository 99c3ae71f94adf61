"""One JSON shape for every error the API answers, and the exceptions the views raise.

Every 4xx (and a 5xx, should one happen) is::

    {"status": 400, "code": "invalid", "detail": "One sentence for a person.",
     "fields": {"message": ["The message is empty; write something to send."],
                "notifications.3.user": ["No user with username 'bob'."]}}

``fields`` maps a field (dotted for nested ones: a batch item is ``notifications.<index>``)
to its messages, and is ``{}`` when the error is not about fields.

Two kinds of invalid input, both with code ``invalid``: 400 when the request breaks its
OpenAPI schema (a type, a pattern, a length, an unknown or read-only field), 422 when it is
well-formed but breaks a rule the schema can't state — no such user, an expiry before the
send time, a phone number that is not a mobile. Django ``ValidationError``s raised by the
services are the second kind, with the services' own messages.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from notifications.api.auth import client_of

logger = logging.getLogger("notifications.api")

NON_FIELD_KEYS = {"non_field_errors", NON_FIELD_ERRORS}


class Conflict(exceptions.APIException):
    """409: the request can't be carried out in the resource's current state."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class Unprocessable(exceptions.ValidationError):
    """422: well-formed input (as its schema says) that breaks a rule, per field."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY


def from_django(err: DjangoValidationError) -> Unprocessable:
    """A services' ``ValidationError`` as the API's: 422, a message list per field."""
    return Unprocessable(as_serializer_error(err))


def too_large() -> PayloadTooLarge:
    limit = settings.NOTIFY_API_MAX_BODY_BYTES
    return PayloadTooLarge(
        f"The request body is larger than {limit:,} bytes (NOTIFY_API_MAX_BODY_BYTES); "
        "send fewer notifications per batch."
    )


def _clean(text: Any) -> str:
    """``text`` as a string a UTF-8 body can carry (a lone surrogate sent by a client and
    echoed in a message is escaped)."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def flatten(detail: Any, prefix: str = "") -> tuple[list[str], dict[str, list[str]]]:
    """DRF's nested error detail as (messages not about a field, {dotted field: messages})."""
    general: list[str] = []
    fields: dict[str, list[str]] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                key = _clean(key)
                walk(value, path if key in NON_FIELD_KEYS else f"{path}.{key}" if path else key)
        elif isinstance(node, list) and any(isinstance(item, (dict, list)) for item in node):
            for index, item in enumerate(node):
                if item:
                    walk(item, f"{path}.{index}" if path else str(index))
        elif isinstance(node, list):
            for item in node:
                walk(item, path)
        elif path:
            fields.setdefault(path, []).append(_clean(node))
        else:
            general.append(_clean(node))

    walk(detail, prefix)
    return general, fields


def error_body(status_code: int, code: str, detail: str, fields: dict | None = None) -> dict:
    return {"status": status_code, "code": code, "detail": detail, "fields": fields or {}}


def _code_of(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's exception handler: the one error shape for every error, 5xx included (logged)."""
    if isinstance(exc, DjangoValidationError):
        exc = from_django(exc)
    elif isinstance(exc, RequestDataTooBig):  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = too_large()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    headers: dict[str, str] = {}
    if not isinstance(exc, exceptions.APIException):
        logger.error("API error on %s", context.get("request"), exc_info=exc)
        body = error_body(500, "server_error", "Something went wrong on our side; it is logged.")
        return Response(body, status=500)
    if isinstance(exc, Unprocessable):
        general, fields = flatten(exc.detail)
        detail = " ".join(general) or "The request breaks a rule: see the field errors."
    elif isinstance(exc, exceptions.ValidationError):
        general, fields = flatten(exc.detail)
        detail = " ".join(general) or "The request is not valid: see the field errors."
    else:
        general, fields = flatten(exc.detail)
        detail = " ".join(general) or str(exc.default_detail)
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if isinstance(exc, exceptions.Throttled):
        wait = max(1, math.ceil(exc.wait or 1))
        headers["Retry-After"] = str(wait)
        who = "for this API key" if client_of(context["request"]) else "from this address"
        detail = f"Too many requests {who}; try again in {wait} s."
    return Response(
        error_body(exc.status_code, _code_of(exc), detail, fields),
        status=exc.status_code,
        headers=headers,
    )


@csrf_exempt
def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any URL under /api/ that names no endpoint: a 404 in the API's shape."""
    detail = f"No API endpoint at {request.path}."
    if request.path.endswith("/") and not request.path.endswith(("/schema/", "/docs/", "/redoc/")):
        detail += f" Did you mean {request.path.rstrip('/')} (no trailing slash)?"
    return JsonResponse(error_body(404, "not_found", _clean(detail)), status=404)
