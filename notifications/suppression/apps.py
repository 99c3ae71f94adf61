from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SuppressionConfig(AppConfig):
    name = "notifications.suppression"
    label = "suppression"
    verbose_name = _("Bounces and suppressed addresses")

    def ready(self) -> None:
        # django-anymail's tracking signal feeds the inbox (Django's documented place to
        # connect receivers).
        from notifications.suppression import receivers

        receivers.connect()
