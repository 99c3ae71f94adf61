"""Who may call the API: client applications with an API key, staff in the browser.

- ``Authorization: Bearer <key>`` (``ApiKeyAuthentication``): an unknown, malformed or revoked
  key gets 401; a read-only key gets 403 on anything but GET, HEAD and OPTIONS.
- A staff session (the admin's login) works too, in the browsable API, with the staff user's
  admin permissions (view to read; add or change to write).
- Nothing else: no key and no session gets 401 with ``WWW-Authenticate: Bearer``.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.utils.encoding import force_str
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from notifications.api_keys import InvalidKey, api_key_authenticate
from notifications.models import ApiKey


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer nsk_…``: the client application's key."""

    keyword = "bearer"

    def authenticate(self, request: Request):
        header = get_authorization_header(request).split()
        if not header or force_str(header[0], errors="replace").lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the key as 'Authorization: Bearer <key>', with one space and no other words."
            )
        try:
            raw = header[1].decode("ascii")
            key = api_key_authenticate(raw)
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Malformed API key.") from None
        except InvalidKey as err:
            raise exceptions.AuthenticationFailed(str(err)) from None
        # The key is the caller; no user account stands behind it.
        return (AnonymousUser(), key)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def client_of(request: Request) -> str | None:
    """Who is calling, for throttling and idempotency keys: ``key:<prefix>`` or
    ``user:<id>``."""
    if isinstance(request.auth, ApiKey):
        return f"key:{request.auth.prefix}"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


class HasScope(BasePermission):
    """API keys by scope; staff sessions by their admin permissions (the view's
    ``read_perms`` and ``write_perms``)."""

    def has_permission(self, request: Request, view) -> bool:
        writing = request.method not in SAFE_METHODS
        if isinstance(request.auth, ApiKey):
            if writing and request.auth.scope != ApiKey.Scope.WRITE:
                raise exceptions.PermissionDenied(
                    f"The API key {request.auth.name!r} is read-only; this request needs a "
                    "read-and-write key."
                )
            return True
        user = request.user
        if user is None or not user.is_authenticated:
            return False  # 401: DRF asks for credentials
        if not (user.is_active and user.is_staff):
            raise exceptions.PermissionDenied(
                "Only staff accounts may use the API from a browser session; applications use "
                "an API key."
            )
        perms = getattr(view, "write_perms" if writing else "read_perms", ())
        if not user.has_perms(perms):
            raise exceptions.PermissionDenied(
                f"Your account lacks the admin permission for this: {', '.join(perms)}."
            )
        return True


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes ``ApiKeyAuthentication``."""

    target_class = "notifications.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key made in the admin (API keys → Add) or with "
            "`manage.py create_api_key NAME [--read-only]`.",
        }
