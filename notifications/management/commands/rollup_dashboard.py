"""``manage.py rollup_dashboard``: roll up the dashboard's past days now."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from notifications import rollup


class Command(BaseCommand):
    help = (
        "Recompute the dashboard's rollup of the 30 days before yesterday from the "
        "notifications and attempts (runs hourly in the consumer)."
    )

    def handle(self, *args, **options) -> None:
        result = rollup.refresh()
        self.stdout.write(f"{result['days']} day(s) rolled up, {result['counts']} count(s)")
