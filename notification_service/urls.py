"""URL routes: the admin is the operator's interface; `/` sends visitors there. Beside the
model admin: the dashboard and the small JSON endpoints its pages poll (notifications.views),
Django's set_language for the admin's language switcher, what providers call (the Telegram
webhook, the SMS delivery callback, the email provider's tracking webhooks under
`/anymail/`), users' preference pages (`/preferences/<token>/`, a signed link, no login), and
the HTTP API for other services under `/api/v1/`."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

from notifications import provider_views, views
from notifications.api.errors import not_found
from notifications.preferences import views as preference_views

admin.site.site_header = _("Notification Service")
admin.site.site_title = _("Notification Service")
admin.site.index_title = _("Notifications and contacts")


def operator_view(view):
    """An admin page: login and staff required, like the model admin's own."""
    return admin.site.admin_view(view)


urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/dashboard/", operator_view(views.dashboard), name="notify-dashboard"),
    path(
        "admin/notifications/campaign/<int:pk>/progress/",
        operator_view(views.campaign_progress),
        name="notify-campaign-progress",
    ),
    path(
        "admin/notifications/campaign/<int:pk>/cancel/",
        operator_view(views.campaign_cancel),
        name="notify-campaign-cancel",
    ),
    path(
        "admin/notifications/notification/states/",
        operator_view(views.notification_states),
        name="notify-notification-states",
    ),
    path(
        "admin/notifications/usercontact/<int:pk>/telegram-link/",
        operator_view(views.contact_telegram_link),
        name="notify-contact-telegram-link",
    ),
    path(
        "admin/notifications/usercontact/<int:pk>/send-test/",
        operator_view(views.contact_send_test),
        name="notify-contact-send-test",
    ),
    path("admin/", admin.site.urls),
    path("telegram/webhook/", provider_views.telegram_webhook, name="telegram-webhook"),
    path("sms/callback/<str:secret>/", provider_views.sms_callback, name="sms-callback"),
    # The email provider's tracking webhooks (django-anymail's views, with basic auth from
    # ANYMAIL_WEBHOOK_SECRET): /anymail/postmark/tracking/ and the others anymail knows.
    path("anymail/", include("notifications.suppression.urls")),
    # A user's preference page, reached without a login by the signed link in their emails.
    path("preferences/<str:token>/", preference_views.page, name="preferences-page"),
    # One-click unsubscribe (RFC 8058): the List-Unsubscribe link of a category's emails.
    path("unsubscribe/<str:token>/", preference_views.unsubscribe, name="unsubscribe"),
    # The browsable API's log-in and log-out links (staff sessions).
    path("api/v1/auth/", include("rest_framework.urls")),
    path("api/v1/", include("notifications.api.urls")),
    re_path(r"^api/(?P<path>.*)$", not_found),
]
