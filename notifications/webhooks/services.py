"""What the admin and the API do with endpoints and deliveries: create, change, rotate a
secret, enable or disable, delete; replay a delivery. Keyword arguments, ``ValidationError``
for what the operator or client must fix (the message says what), and the same rules from
both places.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from notifications.webhooks.models import WebhookDelivery, WebhookEndpoint, every_event_type
from notifications.webhooks.signing import secret_make

# How long the previous secret keeps signing after a rotation, by default.
ROTATION_OVERLAP = timedelta(hours=24)
# The longest it may be asked to.
ROTATION_OVERLAP_MAX = timedelta(days=7)
CHANGEABLE = ("url", "description", "event_types", "enabled")


def _ordered_types(types: list[str] | None) -> list[str]:
    """``types`` once each, in the order of ``EventType`` (unknown ones kept, for the
    validator to name)."""
    if types is None:
        return every_event_type()
    known = [t for t in every_event_type() if t in types]
    return known + [t for t in dict.fromkeys(types) if t not in known]


def webhook_endpoint_create(
    *,
    url: str,
    description: str = "",
    event_types: list[str] | None = None,
    enabled: bool = True,
    secret: str = "",
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint, and its secret (``secret``, or a new random one when blank): the only
    time the secret is handed out whole. Raises ``ValidationError`` per field (a URL that is
    not https outside DEBUG or on a private address, a secret not in ``whsec_`` form, an
    unknown event type)."""
    endpoint = WebhookEndpoint(
        url=(url or "").strip(),
        description=(description or "").strip(),
        event_types=_ordered_types(event_types),
        enabled=enabled,
        secret=(secret or "").strip() or secret_make(),
    )
    endpoint.full_clean()
    endpoint.save()
    return endpoint, endpoint.secret


def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, changes: dict[str, Any], by: str = ""
) -> WebhookEndpoint:
    """Change ``changes`` (of url, description, event_types, enabled) of ``endpoint``; the
    others keep their values. Enabling it clears why it was disabled and makes its waiting
    deliveries due at once. Raises ``ValidationError`` as ``webhook_endpoint_create``."""
    unknown = set(changes) - set(CHANGEABLE)
    if unknown:
        raise ValueError(f"not changeable: {', '.join(sorted(unknown))}")
    was_enabled = endpoint.enabled
    if "url" in changes:
        endpoint.url = (changes["url"] or "").strip()
    if "description" in changes:
        endpoint.description = (changes["description"] or "").strip()
    if "event_types" in changes:
        endpoint.event_types = _ordered_types(changes["event_types"])
    if "enabled" in changes:
        endpoint.enabled = bool(changes["enabled"])
    exclude = [] if "url" in changes else ["url"]  # a saved URL is not looked up again
    endpoint.full_clean(exclude=exclude)
    with transaction.atomic():
        endpoint.save()
        if endpoint.enabled and not was_enabled:
            _enabled(endpoint)
        elif was_enabled and not endpoint.enabled:
            _disabled(endpoint, by)
    return endpoint


def _enabled(endpoint: WebhookEndpoint) -> None:
    now = timezone.now()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(disabled_at=None, disabled_reason="")
    endpoint.disabled_at, endpoint.disabled_reason = None, ""
    endpoint.deliveries.filter(status=WebhookDelivery.Status.PENDING).update(next_attempt_at=now)


def _disabled(endpoint: WebhookEndpoint, by: str) -> None:
    now = timezone.now()
    reason = _("Disabled by %(who)s on %(when)s UTC.") % {
        "who": by or _("an operator"),
        "when": f"{now:%Y-%m-%d %H:%M}",
    }
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(disabled_at=now, disabled_reason=reason)
    endpoint.disabled_at, endpoint.disabled_reason = now, reason


def webhook_endpoints_set_enabled(
    *, queryset: QuerySet[WebhookEndpoint], enabled: bool, by: str = ""
) -> int:
    """Enable (or disable) the endpoints of ``queryset`` that are not so yet; returns how
    many changed."""
    changed = 0
    for endpoint in queryset.filter(enabled=not enabled):
        webhook_endpoint_update(endpoint=endpoint, changes={"enabled": enabled}, by=by)
        changed += 1
    return changed


def webhook_endpoint_rotate_secret(
    *,
    endpoint: WebhookEndpoint,
    secret: str = "",
    overlap: timedelta = ROTATION_OVERLAP,
) -> str:
    """Sign with a new secret (``secret``, or a new random one) from now; the current one
    keeps signing beside it for ``overlap`` (0: stops now), so receivers can switch. Returns
    the new secret, handed out whole only here. Raises ``ValidationError``."""
    if not timedelta(0) <= overlap <= ROTATION_OVERLAP_MAX:
        raise ValidationError(
            {"overlap_hours": _("Keep the previous secret signing for 0 to 168 hours.")}
        )
    new = (secret or "").strip() or secret_make()
    now = timezone.now()
    endpoint.previous_secret = endpoint.secret if overlap else ""
    endpoint.previous_secret_until = now + overlap if overlap else None
    endpoint.secret = new
    endpoint.full_clean(exclude=["url"])
    endpoint.save(
        update_fields=["secret", "previous_secret", "previous_secret_until", "updated_at"]
    )
    return new


def webhook_endpoint_end_rotation(*, endpoint: WebhookEndpoint) -> bool:
    """Stop signing with the previous secret now; False if none was signing."""
    signing = len(endpoint.signing_secrets()) > 1
    endpoint.previous_secret, endpoint.previous_secret_until = "", None
    endpoint.save(update_fields=["previous_secret", "previous_secret_until", "updated_at"])
    return signing


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Delete ``endpoint`` with its deliveries (its events stay until pruned)."""
    endpoint.delete()


@dataclass
class ReplayResult:
    replayed: list[WebhookDelivery]
    disabled: int  # left alone: their endpoint is disabled


def webhook_deliveries_replay(*, queryset: QuerySet[WebhookDelivery]) -> ReplayResult:
    """Send each delivery of ``queryset`` again, as a new delivery of the same event to the
    same endpoint, due at once (same ``webhook-id``). Those of disabled endpoints are left
    alone: enable the endpoint first."""
    now = timezone.now()
    rows = list(queryset.select_related("endpoint"))
    ready = [d for d in rows if d.endpoint.enabled]
    replayed = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            event_id=d.event_id,
            endpoint_id=d.endpoint_id,
            next_attempt_at=now,
            created_at=now,
            replay_of=d.pk,
        )
        for d in ready
    )
    return ReplayResult(replayed=replayed, disabled=len(rows) - len(ready))
