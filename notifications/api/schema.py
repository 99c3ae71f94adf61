"""The OpenAPI schema's finishing touches (a drf-spectacular postprocessing hook): every
operation lists the errors it can answer, in the one error shape (500 included); path ids
state their range; creating a notification links to reading, cancelling and resending it,
and creating a webhook endpoint to reading, changing, rotating its secret and listing its
deliveries (schemathesis follows these links in its stateful tests)."""

from __future__ import annotations

from typing import Any

from notifications.api.fields import LANGUAGES, MAX_ID
from notifications.api.serializers import BATCH_MAX

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
    "400": "The request breaks its schema (a type, pattern, length, unknown or read-only "
    "field, or a malformed body): `fields` has a message per field.",
    "401": "No API key, or an unknown, malformed or revoked one.",
    "403": "The key is read-only (or the staff account lacks the admin permission).",
    "404": "No such notification, user, webhook endpoint or delivery.",
    "406": "The Accept header asks for a format the API doesn't speak (it speaks JSON).",
    "409": "The Idempotency-Key was used with another body, or the request was left alone.",
    "413": "The body is larger than NOTIFY_API_MAX_BODY_BYTES (8 MiB by default).",
    "415": "The body is not JSON in a charset the API reads (send Content-Type: "
    "application/json, UTF-8).",
    "422": "Well-formed, but it breaks a rule the schema can't state (no such user, a time "
    "out of range or an expiry before the send time, a phone number that is not a mobile, a "
    "cursor the API did not give, no such category or a required one, a webhook URL that is "
    "not one or whose host is on a private network): `fields` has a message per field.",
    "429": "Too many requests for this key (or, without a valid key, from this address): wait "
    "the Retry-After header's seconds.",
    "500": "Something went wrong on our side; it is logged.",
}
# Operations whose input has rules beyond the schema (answered with 422).
WITH_RULES = {
    "notifications_list",
    "notifications_create",
    "notifications_batch",
    "users_contact_update",
    "users_preferences_update",
    "webhooks_create",
    "webhooks_update",
}
RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 1},
        "description": "Seconds to wait before the next request.",
    }
}
ID_SCHEMA = {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}
ID_FROM_BODY = {"id": "$response.body#/id"}
LINKS = {
    "GetNotification": {"operationId": "notifications_retrieve", "parameters": ID_FROM_BODY},
    "CancelNotification": {"operationId": "notifications_cancel", "parameters": ID_FROM_BODY},
    "ResendNotification": {"operationId": "notifications_resend", "parameters": ID_FROM_BODY},
    "GetUserContact": {
        "operationId": "users_contact_retrieve",
        "parameters": {"id": "$response.body#/user"},
    },
    "InviteUser": {
        "operationId": "users_contact_invite",
        "parameters": {"id": "$response.body#/user"},
    },
    "GetUserPreferences": {
        "operationId": "users_preferences_retrieve",
        "parameters": {"id": "$response.body#/user"},
    },
    "UpdateUserPreferences": {
        "operationId": "users_preferences_update",
        "parameters": {"id": "$response.body#/user"},
    },
}


WEBHOOK_ID = {"id": "$response.body#/id"}
WEBHOOK_LINKS = {
    "GetWebhook": {"operationId": "webhooks_retrieve", "parameters": WEBHOOK_ID},
    "UpdateWebhook": {"operationId": "webhooks_update", "parameters": WEBHOOK_ID},
    "RotateWebhookSecret": {"operationId": "webhooks_rotate_secret", "parameters": WEBHOOK_ID},
    "ListWebhookDeliveries": {"operationId": "webhooks_deliveries_list", "parameters": WEBHOOK_ID},
}


def _error_codes(method: str, path: str, operation: dict[str, Any]) -> list[str]:
    """The errors an operation can answer besides those it declares itself."""
    names = {parameter["name"] for parameter in operation.get("parameters", [])}
    reads_body = "requestBody" in operation or "Idempotency-Key" in names
    codes = ["401", "403", "406", "429", "500"]
    if reads_body or names - {"id"}:
        codes.append("400")
    if "{" in path:
        codes.append("404")
    if reads_body:
        codes += ["413", "415"]
    if "Idempotency-Key" in names:
        codes.append("409")
    if operation.get("operationId") in WITH_RULES:
        codes.append("422")
    return codes


BLANK = {"type": "string", "maxLength": 0}


def _one_schema_for_blank(properties: dict[str, Any]) -> None:
    """A field that may be blank has a pattern that allows blank: drf-spectacular's
    ``oneOf: [the field, blank]`` would refuse "" (it matches both), and confuses clients."""
    for prop in properties.values():
        choices = prop.get("oneOf")
        if isinstance(choices, list) and len(choices) == 2 and choices[1] == BLANK:
            del prop["oneOf"]
            prop.update(choices[0])


def add_error_responses_and_links(result: dict[str, Any], generator, request, public) -> dict:
    """drf-spectacular postprocessing hook; see the module docstring."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    # Blank is a language too (the service's); drf-spectacular leaves blank out of enums.
    schemas["Language"] = {"type": "string", "enum": LANGUAGES}
    # drf-spectacular states no bounds for a list of serializers.
    batch = schemas["NotificationBatchRequest"]["properties"]["notifications"]
    batch.update(minItems=1, maxItems=BATCH_MAX)
    for name, schema in schemas.items():
        _one_schema_for_blank(schema.get("properties", {}))
        if name.endswith("Request"):  # the API refuses fields it doesn't know
            schema["additionalProperties"] = False
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "id":
                    parameter["schema"] = dict(ID_SCHEMA)
            responses = operation.setdefault("responses", {})
            for code in _error_codes(method, path, operation):
                entry = responses.setdefault(code, {"description": DESCRIPTIONS[code]})
                entry["content"] = {"application/json": {"schema": ERROR}}
                if code == "429":
                    entry["headers"] = RETRY_AFTER
            if operation.get("operationId") == "notifications_create":
                responses["202"]["links"] = LINKS
            if operation.get("operationId") == "webhooks_create":
                responses["201"]["links"] = WEBHOOK_LINKS
    return result
