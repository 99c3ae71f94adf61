"""``/api/v1/``: the endpoints (the webhooks' from ``notifications.webhooks.api``), the
OpenAPI schema, Swagger UI and ReDoc (served from the project's own static files:
drf-spectacular-sidecar, no CDN), and a JSON 404 for any other path under it."""

from django.urls import path, re_path

from notifications.api import preferences, views
from notifications.api.docs import RedocView, SchemaView, SwaggerView
from notifications.api.errors import not_found
from notifications.webhooks import api as webhooks

app_name = "api"

urlpatterns = [
    path("notifications", views.NotificationsView.as_view(), name="notifications"),
    path("notifications/batch", views.NotificationBatchView.as_view(), name="batch"),
    path("notifications/<int:pk>", views.NotificationView.as_view(), name="notification"),
    path("notifications/<int:pk>/cancel", views.NotificationCancelView.as_view(), name="cancel"),
    path("notifications/<int:pk>/resend", views.NotificationResendView.as_view(), name="resend"),
    path("users/<int:pk>/contact", views.ContactView.as_view(), name="contact"),
    path("users/<int:pk>/contact/invite", views.ContactInviteView.as_view(), name="contact-invite"),
    path("users/<int:pk>/preferences", preferences.PreferencesView.as_view(), name="preferences"),
    path("categories", preferences.CategoriesView.as_view(), name="categories"),
    path("webhooks", webhooks.WebhooksView.as_view(), name="webhooks"),
    path("webhooks/<int:pk>", webhooks.WebhookView.as_view(), name="webhook"),
    path(
        "webhooks/<int:pk>/rotate-secret",
        webhooks.WebhookRotateView.as_view(),
        name="webhook-rotate-secret",
    ),
    path(
        "webhooks/<int:pk>/deliveries",
        webhooks.WebhookDeliveriesView.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhooks/deliveries/<int:pk>/replay",
        webhooks.WebhookReplayView.as_view(),
        name="webhook-replay",
    ),
    path("schema/", SchemaView.as_view(api_version="v1"), name="schema"),
    path("docs/", SwaggerView.as_view(url_name="api:schema"), name="docs"),
    path(
        "redoc/",
        RedocView.as_view(url_name="api:schema", template_name="api/redoc.html"),
        name="redoc",
    ),
    # Any path, line breaks included (``.`` would stop at one, and Django answer in HTML).
    re_path(r"^(?P<path>[\s\S]*)\Z", not_found),
]
