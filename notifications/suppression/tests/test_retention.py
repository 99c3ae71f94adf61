"""What is kept: an active suppression until it is lifted (whatever its age), a lifted one
for NOTIFY_RETENTION_DAYS after the lift; soft bounces for NOTIFY_SOFT_BOUNCE_DAYS."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.suppression import services
from notifications.suppression.models import Suppression, TrackingEvent

pytestmark = pytest.mark.django_db

Kind = TrackingEvent.Kind


def soft_bounce(days_ago: float, processed: bool = True) -> TrackingEvent:
    at = timezone.now() - timedelta(days=days_ago)
    return TrackingEvent.objects.create(
        provider="Postmark",
        event_type="bounced",
        kind=Kind.SOFT_BOUNCE,
        address="ann@example.com",
        occurred_at=at,
        received_at=at,
        processed_at=at if processed else None,
    )


def test_prune_keeps_active_suppressions_and_the_soft_bounce_window(settings):
    settings.NOTIFY_SOFT_BOUNCE_DAYS, settings.NOTIFY_RETENTION_DAYS = 7, 90
    now = timezone.now()
    old_active = Suppression.objects.create(
        address="old@example.com", reason="hard_bounce", created_at=now - timedelta(days=900)
    )
    lifted_long_ago = Suppression.objects.create(
        address="gone@example.com", reason="hard_bounce", lifted_at=now - timedelta(days=91)
    )
    lifted_lately = Suppression.objects.create(
        address="back@example.com", reason="complaint", lifted_at=now - timedelta(days=89)
    )
    old, recent, waiting = soft_bounce(8), soft_bounce(6), soft_bounce(30, processed=False)

    assert services.prune(now) == {"soft_bounces": 1, "lifted_suppressions": 1}
    assert set(Suppression.objects.values_list("pk", flat=True)) == {
        old_active.pk,
        lifted_lately.pk,
    }
    assert not Suppression.objects.filter(pk=lifted_long_ago.pk).exists()
    assert set(TrackingEvent.objects.values_list("pk", flat=True)) == {recent.pk, waiting.pk}
    assert old.pk not in TrackingEvent.objects.values_list("pk", flat=True)
