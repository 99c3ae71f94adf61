"""``manage.py prune_old``: delete what has outlived retention now, or (``--dry-run``) say
what that would be. The consumer runs the same service hourly (``operations.tasks``)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from notifications.operations import retention


class Command(BaseCommand):
    help = (
        "Delete final notifications untouched for NOTIFY_RETENTION_DAYS, with their attempts, "
        "SMS receipts and ended campaigns' skipped recipients, in short batches (runs hourly "
        "in the consumer). --dry-run only counts them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; delete nothing."
        )
        parser.add_argument(
            "--batch", type=int, default=None, help="Notifications per transaction."
        )
        parser.add_argument(
            "--seconds",
            type=float,
            default=None,
            help="Stop after this long (default NOTIFY_RETENTION_SECONDS); 0: one batch.",
        )

    def handle(self, *args, dry_run: bool, batch: int | None, seconds: float | None, **options):
        if dry_run:
            result = retention.plan()
            self.stdout.write(self._cutoff(result) + f"Would delete {self._counts(result)}.")
            return
        verbose = options["verbosity"] >= 2
        result = retention.prune(
            batch_size=batch,
            seconds=seconds,
            progress=(lambda r: self.stdout.write(f"  {r.batches}: {self._counts(r)}"))
            if verbose
            else None,
        )
        if result.busy:
            self.stdout.write("Another prune is running (on this or another host); nothing done.")
            return
        end = "done" if result.done else "stopped at its time budget; the rest goes next run"
        self.stdout.write(
            self._cutoff(result)
            + f"Deleted {self._counts(result)} in {result.batches} batch(es); {end}."
        )

    @staticmethod
    def _cutoff(result: retention.PruneResult) -> str:
        days = settings.NOTIFY_RETENTION_DAYS
        shown = timezone.localtime(result.cutoff).strftime("%Y-%m-%d %H:%M %Z")
        held = (
            ", held back to the days the dashboard's rollup has covered" if result.held_back else ""
        )
        return f"Untouched since before {shown} (NOTIFY_RETENTION_DAYS={days}{held}). "

    @staticmethod
    def _counts(result: retention.PruneResult) -> str:
        return (
            f"{result.notifications} notification(s), {result.attempts} attempt(s), "
            f"{result.sms_parts} SMS receipt(s), {result.campaign_skips} skipped recipient(s)"
        )
