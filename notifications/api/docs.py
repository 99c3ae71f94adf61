"""The OpenAPI schema and its pages (Swagger UI, ReDoc): public by default, or, with
``NOTIFY_API_DOCS_PUBLIC=0``, only for an API key or a staff session. Either way an address
that asks too often gets 429 (``NOTIFY_API_ANON_RATE``, as for any request without a key)."""

from __future__ import annotations

from csp.decorators import csp_update
from django.conf import settings
from django.utils.decorators import method_decorator
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings

from notifications.api.auth import HasScope
from notifications.api.throttling import ClientRateThrottle, CountsFailedAuthentication


class DocsAccess(CountsFailedAuthentication):
    """A view mixin: nobody is asked who they are while the docs are public; else as the
    API asks (any key, or a staff session)."""

    throttle_classes = [ClientRateThrottle]

    def get_authenticators(self) -> list[BaseAuthentication]:
        if settings.NOTIFY_API_DOCS_PUBLIC:
            return []
        return [auth() for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES]

    def get_permissions(self) -> list[BasePermission]:
        return [] if settings.NOTIFY_API_DOCS_PUBLIC else [HasScope()]


class SchemaView(DocsAccess, SpectacularAPIView):
    pass


# Both pages style themselves inline (a <style> in their head; ReDoc's components at run
# time) and ReDoc parses in a worker it makes from a blob: their Content-Security-Policy lets
# those through. Scripts stay the service's own: Swagger UI's start-up script is served as a
# file (the split view), not inline.
DOCS_CSP = {"style-src": ["'unsafe-inline'"], "worker-src": ["blob:"]}


@method_decorator(csp_update(DOCS_CSP), name="dispatch")
class SwaggerView(DocsAccess, SpectacularSwaggerSplitView):
    pass


@method_decorator(csp_update(DOCS_CSP), name="dispatch")
class RedocView(DocsAccess, SpectacularRedocView):
    pass
