"""``manage.py create_api_key NAME [--read-only]``: a key for a client application, printed
once."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from notifications.api_keys import api_key_create
from notifications.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key for a client application and print it (only this once)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="which application will use the key")
        parser.add_argument(
            "--read-only", action="store_true", help="may only read (GET), not create or cancel"
        )

    def handle(self, *args, name: str, read_only: bool, **options) -> None:
        scope = ApiKey.Scope.READ if read_only else ApiKey.Scope.WRITE
        try:
            key, raw = api_key_create(name=name, scope=scope)
        except ValidationError as err:
            raise CommandError("; ".join(err.messages)) from None
        self.stderr.write(
            f"API key {key.name!r} ({key.get_scope_display().lower()}) created. It is shown "
            "only this once: store it where the client reads its secrets."
        )
        self.stdout.write(raw)
