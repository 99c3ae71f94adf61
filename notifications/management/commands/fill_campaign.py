"""``manage.py fill_campaign <id>``: create a campaign's notifications not created yet."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from notifications import fill_process
from notifications.models import Campaign
from notifications.tasks import fill


class Command(BaseCommand):
    help = (
        "Create a campaign's notifications that are not created yet, from where its creation "
        "stopped (a consumer runs this for a large campaign)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("campaign_id", type=int)
        parser.add_argument(
            "--report",
            action="store_true",
            help="write each committed step's count as a JSON line for the consumer that "
            "started this process, which counts it in its metrics",
        )
        parser.add_argument(
            "--parent", type=int, help="stop after the step under way once this process is gone"
        )

    def handle(self, *args, campaign_id: int, report: bool, parent: int | None, **options):
        if not Campaign.objects.filter(pk=campaign_id).exists():
            raise CommandError(f"There is no campaign {campaign_id}.")

        def write(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        created = fill(
            campaign_id,
            count=fill_process.reporter(write) if report else None,
            stop=fill_process.orphaned(parent),
        )
        if not report:
            self.stdout.write(f"{created} notification(s) created")
