"""``/api/v1/``: the endpoints, the OpenAPI schema, Swagger UI and ReDoc (served from the
project's own static files: drf-spectacular-sidecar, no CDN)."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from notifications.api import views
from notifications.api.errors import not_found

app_name = "api"

urlpatterns = [
    path("notifications", views.NotificationsView.as_view(), name="notifications"),
    path("notifications/batch", views.NotificationBatchView.as_view(), name="batch"),
    path("notifications/<int:pk>", views.NotificationView.as_view(), name="notification"),
    path("notifications/<int:pk>/cancel", views.NotificationCancelView.as_view(), name="cancel"),
    path("notifications/<int:pk>/resend", views.NotificationResendView.as_view(), name="resend"),
    path("users/<int:pk>/contact", views.ContactView.as_view(), name="contact"),
    path("schema/", SpectacularAPIView.as_view(api_version="v1"), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path(
        "redoc/",
        SpectacularRedocView.as_view(url_name="api:schema", template_name="api/redoc.html"),
        name="redoc",
    ),
    re_path(r"^(?P<path>.*)$", not_found),
]
