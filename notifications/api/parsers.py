"""The API's one request format: JSON, read only up to ``NOTIFY_API_MAX_BODY_BYTES`` (Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` is the same limit, see settings)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser

from notifications.api.errors import too_large


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class LimitedJSONParser(JSONParser):
    """JSON in UTF-8 (or the charset the Content-Type names), strict (no NaN or Infinity),
    refused with 413 past the size limit, 415 in a charset Python can't decode text with,
    and 400 when malformed in any way."""

    def parse(self, stream, media_type: str | None = None, parser_context: dict | None = None):
        limit = settings.NOTIFY_API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        try:
            if declared and int(declared) > limit:
                raise too_large()
        except ValueError:
            pass
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise too_large()
        charset = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            text = raw.decode(charset)
        except UnicodeDecodeError as err:
            raise ParseError(f"The body is not valid {charset}: {err.reason}.") from None
        except (LookupError, UnicodeError):  # not a text codec, or "undefined"
            raise UnsupportedMediaType(
                media_type or "",
                detail=f"The charset {charset!r} is not one the API reads; send UTF-8 JSON.",
            ) from None
        try:
            return json.loads(text, parse_constant=_refuse_constant)
        except ValueError as err:
            raise ParseError(f"The body is not valid JSON: {err}.") from None
        except RecursionError:
            raise ParseError("The body is not valid JSON: nested too deeply.") from None


def canonical(data: Any) -> str:
    """``data`` as one canonical JSON text (sorted keys, no spaces), to compare bodies."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
