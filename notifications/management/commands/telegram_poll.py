"""``manage.py telegram_poll``: receive Telegram updates by long polling (no public HTTPS
needed). `make run` starts it when TELEGRAM_UPDATES=poll."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from notifications import telegram_bot
from notifications.senders.base import ConfigurationError, DeliveryError
from notifications.senders.telegram import Conflict

WEBHOOK_ACTIVE = (
    "Telegram refuses to hand out updates by polling while a webhook is set ({detail}). "
    "To poll, delete the webhook: `python manage.py telegram_webhook delete`. To keep the "
    "webhook, set TELEGRAM_UPDATES=webhook and don't run telegram_poll."
)
OTHER_POLLER = (
    "Another process polls this bot's updates ({detail}); only one may. Stop the other one "
    "(another `make run` or telegram_poll with the same TELEGRAM_BOT_TOKEN)."
)


class Command(BaseCommand):
    help = (
        "Long-poll Telegram's getUpdates and handle each update (/start links, /stop, blocks); "
        "the offset is kept in the database, so a restart neither replays nor loses updates."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--timeout", type=int, default=30, help="seconds each getUpdates long-polls (0-50)"
        )
        parser.add_argument(
            "--iterations",
            type=int,
            default=0,
            help="stop after this many getUpdates calls (default: run until stopped)",
        )

    def handle(self, *args, timeout: int, iterations: int, **options) -> None:
        if not settings.TELEGRAM_BOT_TOKEN:
            raise CommandError("Telegram is not configured: set TELEGRAM_BOT_TOKEN")
        if not 0 <= timeout <= 50:
            raise CommandError("--timeout must be 0 to 50 seconds")
        self.stdout.write(f"Polling Telegram for updates (long poll {timeout}s); Ctrl-C stops.")
        failures = calls = 0
        try:
            while not iterations or calls < iterations:
                calls += 1
                try:
                    count = telegram_bot.poll_once(timeout)
                except Conflict as err:
                    template = WEBHOOK_ACTIVE if "webhook" in err.message else OTHER_POLLER
                    raise CommandError(template.format(detail=err.message)) from None
                except ConfigurationError as err:
                    raise CommandError(err.message) from None
                except (DeliveryError, DatabaseError) as err:
                    # Telegram or the database unavailable: the offset was not moved past an
                    # update not handled, so it comes again (and one handled is not redone).
                    failures += 1
                    wait = min(2 ** (failures - 1), 30)
                    reason = err.message if isinstance(err, DeliveryError) else f"database: {err}"
                    self.stderr.write(f"getUpdates failed ({reason}); again in {wait}s")
                    time.sleep(wait)
                    continue
                finally:
                    close_old_connections()
                failures = 0
                if count:
                    self.stdout.write(f"{count} update(s) handled")
        except KeyboardInterrupt:
            self.stdout.write("Stopped.")
