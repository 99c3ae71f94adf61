"""``manage.py telegram_webhook set|delete|info``: Telegram's webhook for this service."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from notifications.senders.base import DeliveryError
from notifications.senders.telegram import TelegramSender
from notifications.telegram_bot import ALLOWED_UPDATES


class Command(BaseCommand):
    help = (
        "set: tell Telegram to POST updates to NOTIFY_PUBLIC_URL/telegram/webhook/ with "
        "TELEGRAM_WEBHOOK_SECRET; delete: stop it (to poll instead); info: what Telegram has."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["set", "delete", "info"])
        parser.add_argument(
            "--url",
            default="",
            help="the webhook URL (default: NOTIFY_PUBLIC_URL/telegram/webhook/)",
        )
        parser.add_argument(
            "--drop-pending",
            action="store_true",
            help="discard the updates Telegram holds for the bot",
        )

    def handle(self, *args, action: str, url: str, drop_pending: bool, **options) -> None:
        if not settings.TELEGRAM_BOT_TOKEN:
            raise CommandError("Telegram is not configured: set TELEGRAM_BOT_TOKEN")
        try:
            getattr(self, f"_{action}")(url, drop_pending)
        except DeliveryError as err:
            raise CommandError(f"Telegram refused: {err.message}") from None

    def _set(self, url: str, drop_pending: bool) -> None:
        if not settings.TELEGRAM_WEBHOOK_SECRET:
            raise CommandError(
                "set TELEGRAM_WEBHOOK_SECRET first (16-256 of A-Z a-z 0-9 _ -): Telegram sends "
                "it with every update and the service refuses updates without it"
            )
        if not url:
            if not settings.NOTIFY_PUBLIC_URL:
                raise CommandError(
                    "set NOTIFY_PUBLIC_URL (this service's public https:// address), or --url"
                )
            url = f"{settings.NOTIFY_PUBLIC_URL}/telegram/webhook/"
        if not url.startswith("https://"):
            self.stderr.write(
                f"warning: Telegram only calls https:// webhooks; {url} may be refused"
            )
        result = TelegramSender().call(
            "setWebhook",
            {
                "url": url,
                "secret_token": settings.TELEGRAM_WEBHOOK_SECRET,
                "allowed_updates": ALLOWED_UPDATES,
                "drop_pending_updates": drop_pending,
            },
        )
        self.stdout.write(f"Webhook set: Telegram will POST updates to {url}")
        if result is not True and result:
            self.stdout.write(str(result))
        if settings.TELEGRAM_UPDATES != "webhook":
            self.stdout.write(
                "Set TELEGRAM_UPDATES=webhook too, so `make run` does not start the poller "
                "(Telegram refuses getUpdates while a webhook is set)."
            )

    def _delete(self, url: str, drop_pending: bool) -> None:
        TelegramSender().call("deleteWebhook", {"drop_pending_updates": drop_pending})
        self.stdout.write(
            "Webhook deleted. Updates now wait for `manage.py telegram_poll` "
            "(TELEGRAM_UPDATES=poll starts it with `make run`)."
        )

    def _info(self, url: str, drop_pending: bool) -> None:
        info = TelegramSender().call("getWebhookInfo")
        info = info if isinstance(info, dict) else {}
        self.stdout.write(f"url: {info.get('url') or '(none: updates are polled)'}")
        self.stdout.write(f"pending updates: {info.get('pending_update_count', 0)}")
        if info.get("allowed_updates"):
            self.stdout.write(f"allowed updates: {', '.join(info['allowed_updates'])}")
        if info.get("last_error_message"):
            self.stdout.write(f"last error: {info['last_error_message']}")
