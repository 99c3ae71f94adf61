"""URL routes: the admin is the operator's interface; `/` sends visitors there. Providers
call the Telegram webhook and the SMS delivery callback."""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from notifications import views

admin.site.site_header = "Notification Service"
admin.site.site_title = "Notification Service"
admin.site.index_title = "Notifications and contacts"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("telegram/webhook/", views.telegram_webhook, name="telegram-webhook"),
    path("sms/callback/<str:secret>/", views.sms_callback, name="sms-callback"),
]
