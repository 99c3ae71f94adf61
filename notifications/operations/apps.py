from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from notifications.operations import sentry


class OperationsConfig(AppConfig):
    name = "notifications.operations"
    label = "operations"
    verbose_name = _("Operations")

    def ready(self) -> None:
        sentry.init()  # off unless SENTRY_DSN is set
