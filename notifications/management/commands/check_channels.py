"""``manage.py check_channels``: is each channel configured, and does it answer?"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from notifications.channels import channel_order, senders_for
from notifications.preferences.links import public_base_url
from notifications.senders.base import DeliveryError


class Command(BaseCommand):
    help = "Show, per channel and transport, whether it is configured and answers. Sends nothing."

    def handle(self, *args, **options) -> None:
        problems = 0
        for channel in channel_order():
            senders = senders_for(channel)
            if not senders:
                self.stdout.write(f"{channel}: not configured (no transports)")
                continue
            for sender in senders:
                label = channel if len(senders) == 1 else f"{channel}/{sender.transport}"
                if not sender.is_configured():
                    half = sender.half_configured()
                    if half:
                        problems += 1
                        self.stdout.write(
                            self.style.ERROR(
                                f"{label}: not configured: {half}; set it, or clear the rest"
                            )
                        )
                    else:
                        self.stdout.write(f"{label}: not configured")
                    continue
                try:
                    answer = sender.check()
                except DeliveryError as err:
                    problems += 1
                    self.stdout.write(
                        self.style.ERROR(f"{label}: configured, NOT answering: {err}")
                    )
                else:
                    self.stdout.write(self.style.SUCCESS(f"{label}: configured, {answer}"))
        if not public_base_url():
            # Not a failure: the service sends, but users have no link to their preferences.
            self.stdout.write(
                self.style.WARNING(
                    "PUBLIC_BASE_URL: not set; emails carry no link to the preference page "
                    "and no one-click unsubscribe (List-Unsubscribe: Gmail and Yahoo may "
                    "file bulk mail without it as spam), and the bot's /settings sends none"
                )
            )
        if problems:
            self.stderr.write(f"{problems} transport(s) half configured or not answering")
            raise SystemExit(1)
