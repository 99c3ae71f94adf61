"""URL routes: the admin is the operator's interface (`/` sends visitors there); the HTTP API
for other services is under `/api/v1/`."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from notifications.api.errors import not_found

admin.site.site_header = "Notification Service"
admin.site.site_title = "Notification Service"
admin.site.index_title = "Notifications and contacts"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    # The browsable API's log-in and log-out links (staff sessions).
    path("api/v1/auth/", include("rest_framework.urls")),
    path("api/v1/", include("notifications.api.urls")),
    re_path(r"^api/(?P<path>.*)$", not_found),
]
