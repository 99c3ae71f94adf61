"""Error reports to Sentry (or any server speaking its protocol), off unless ``SENTRY_DSN``
is set: sentry-sdk with its Django integration, in the web processes and the consumers.

Every event passes ``before_send``, which masks the service's secrets wherever they appear
(the exception's text, local variables of its frames, breadcrumbs, the request) with the
same rules as the logs (``notifications.redaction``). No personal data is sent by default
(sentry-sdk's default: no cookies, no IP addresses, no Authorization header).
"""

from __future__ import annotations

from typing import Any

import sentry_sdk
from django.conf import settings
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.huey import HueyIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

from notifications.redaction import redact


def masked(value: Any) -> Any:
    """``value`` (an event, or any part of one) with every secret masked in its strings."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(item) for item in value]
    return value


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    return masked(event)


def init() -> bool:
    """Start reporting when ``SENTRY_DSN`` is set (once per process); True when it is on."""
    dsn = getattr(settings, "SENTRY_DSN", "")
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        environment=settings.SENTRY_ENVIRONMENT or None,
        integrations=[DjangoIntegration(), LoggingIntegration()],
        # Not sentry's huey integration: it adds a ``sentry_headers`` argument to every task
        # it enqueues, which a consumer without it (SENTRY_DSN unset there) calls the task
        # with, and the task fails. Errors in tasks reach Sentry through the log anyway.
        disabled_integrations=[HueyIntegration()],
        before_send=before_send,
        before_send_transaction=before_send,
        before_breadcrumb=lambda crumb, hint: masked(crumb),
        traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
    )
    return True
