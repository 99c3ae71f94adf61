from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KeptConfig(AppConfig):
    name = "notifications.kept"
    label = "kept"
    verbose_name = _("Kept counts")
