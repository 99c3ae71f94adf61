"""The OpenAPI schema's finishing touches (a drf-spectacular postprocessing hook): every
operation lists the errors it can answer, in the one error shape, and creating a
notification links to reading, cancelling and resending it (schemathesis follows these links
in its stateful tests)."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "description": "The one shape of every error.",
    "properties": {
        "status": {"type": "integer", "description": "The HTTP status code."},
        "code": {"type": "string", "description": "A stable word for programs, e.g. invalid."},
        "detail": {"type": "string", "description": "One sentence for a person."},
        "fields": {
            "type": "object",
            "description": "Messages per field (dotted for nested ones: notifications.3.user).",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["status", "code", "detail", "fields"],
}
DESCRIPTIONS = {
    "400": "Invalid input: `fields` has a message per field.",
    "401": "No API key, or an unknown, malformed or revoked one.",
    "403": "The key is read-only (or the staff account lacks the admin permission).",
    "404": "No such notification or user.",
    "406": "The Accept header asks for a format the API doesn't speak (it speaks JSON).",
    "409": "The Idempotency-Key was used with another body, or the request was left alone.",
    "413": "The body is larger than NOTIFY_API_MAX_BODY_BYTES.",
    "415": "The body is not JSON (send Content-Type: application/json).",
    "429": "Too many requests for this key: wait the Retry-After header's seconds.",
}
RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds to wait before the next request.",
    }
}
ID_FROM_BODY = {"id": "$response.body#/id"}
LINKS = {
    "GetNotification": {"operationId": "notifications_retrieve", "parameters": ID_FROM_BODY},
    "CancelNotification": {"operationId": "notifications_cancel", "parameters": ID_FROM_BODY},
    "ResendNotification": {"operationId": "notifications_resend", "parameters": ID_FROM_BODY},
    "GetUserContact": {
        "operationId": "users_contact_retrieve",
        "parameters": {"id": "$response.body#/user"},
    },
}


def _error_codes(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    codes = ["400", "401", "403", "406", "429"]
    if "{" in path:
        codes.append("404")
    if method in ("post", "put", "patch"):
        codes += ["413", "415"]
    if method == "post":
        codes.append("409")
    return codes


def add_error_responses_and_links(result: dict[str, Any], generator, request, public) -> dict:
    """drf-spectacular postprocessing hook; see the module docstring."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for name, schema in schemas.items():
        if name.endswith("Request"):  # the API refuses fields it doesn't know
            schema["additionalProperties"] = False
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for code in _error_codes(method, path, operation):
                entry = responses.setdefault(code, {"description": DESCRIPTIONS[code]})
                entry["content"] = {"application/json": {"schema": ERROR}}
                if code == "429":
                    entry["headers"] = RETRY_AFTER
            if operation.get("operationId") == "notifications_create":
                responses["202"]["links"] = LINKS
    return result
