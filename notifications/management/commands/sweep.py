"""``manage.py sweep``: re-queue expired leases, end expired rows and re-ring lost doorbells."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from notifications.tasks import sweep_now


class Command(BaseCommand):
    help = "Recover notifications from crashed workers and lost queue messages (runs every minute in the consumer)."

    def handle(self, *args, **options) -> None:
        result = sweep_now()
        self.stdout.write(
            f"{result['lease_expired']} expired lease(s) re-queued, {result['failed']} ended "
            f"(no rounds left), {result['rung']} doorbell(s) rung"
        )
