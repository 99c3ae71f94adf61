from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _

from notifications.webhooks import triggers


class WebhooksConfig(AppConfig):
    name = "notifications.webhooks"
    label = "webhooks"
    verbose_name = _("Webhooks")

    def ready(self) -> None:
        # The outbox's triggers after every migrate (and flush): SQLite drops a table's
        # triggers when a migration rebuilds that table, so they are put back each time.
        post_migrate.connect(triggers.reinstall, sender=self)
