"""``manage.py sweep``: re-queue expired leases and re-ring lost doorbells now."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from notifications.services import notifications_sweep


class Command(BaseCommand):
    help = "Recover notifications from crashed workers and lost queue messages (runs every minute in the consumer)."

    def handle(self, *args, **options) -> None:
        result = notifications_sweep()
        self.stdout.write(
            f"{result['lease_expired']} expired lease(s) re-queued, {result['rung']} doorbell(s) rung"
        )
