"""Webhooks in the admin: endpoints (made, changed, enabled or disabled, their secret rotated
and shown whole once), and each endpoint's deliveries with every try and what the endpoint
answered (the first 1 KB), replayable. Thin: the changes go through ``services``.

A secret is never shown in a list or on a page after the one that made it: the pages show
``whsec_…AbCd``. Why an endpoint was disabled (every try of a delivery failed, or by whom)
is on its row and its page.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from notifications.webhooks import payloads, services
from notifications.webhooks.models import (
    EventType,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.webhooks.signing import SECRET_RULE, validate_secret

RECENT = 10  # deliveries shown on an endpoint's page


class EndpointForm(forms.ModelForm):
    """The endpoint's fields, its event types as checkboxes, and a secret to set."""

    event_types = forms.MultipleChoiceField(
        label=gettext_lazy("Event types"),
        choices=EventType.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("The events this endpoint gets."),
    )
    new_secret = forms.CharField(
        label=gettext_lazy("Secret"),
        required=False,
        validators=[validate_secret],
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=SECRET_RULE,
    )
    end_rotation = forms.BooleanField(
        label=gettext_lazy("Stop signing with the previous secret now"),
        required=False,
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "description", "event_types", "enabled")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["new_secret"].label = _("New secret")
            self.fields["new_secret"].help_text = (
                _(
                    "Blank: the secret stays. A new one signs from now, and the current one "
                    "beside it for 24 hours, while receivers switch."
                )
                + " "
                + str(SECRET_RULE)
            )
        else:
            self.fields["event_types"].initial = list(EventType.values)

    def _get_validation_exclusions(self):
        """A saved URL is not checked (looked up) again unless it changed."""
        excluded = super()._get_validation_exclusions()
        if self.instance.pk and "url" not in self.changed_data:
            excluded.add("url")
        return excluded

    def clean_event_types(self) -> list[str]:
        chosen = self.cleaned_data["event_types"]
        return [t for t in EventType.values if t in chosen]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = (
        "name",
        "url",
        "enabled",
        "event_count",
        "signing_secrets",
        "why_disabled",
        "created_at",
    )
    list_display_links = ("name", "url")
    list_filter = ("enabled",)
    search_fields = ("url", "description")
    actions = ["enable_selected", "disable_selected", "rotate_secrets", "end_rotations"]

    def get_fieldsets(self, request: HttpRequest, obj: WebhookEndpoint | None = None):
        if obj is None:
            return (
                (None, {"fields": ("url", "description", "event_types", "enabled")}),
                (_("Signing"), {"fields": ("new_secret",)}),
            )
        return (
            (None, {"fields": ("url", "description", "event_types", "enabled")}),
            (_("State"), {"fields": ("disabled_at", "why_disabled_full")}),
            (
                _("Signing"),
                {
                    "fields": (
                        "signing_secrets",
                        "previous_secret_until",
                        "new_secret",
                        "end_rotation",
                    )
                },
            ),
            (_("Recent deliveries"), {"fields": ("recent_deliveries",)}),
            (_("History"), {"fields": ("created_at", "updated_at")}),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None):
        if obj is None:
            return ()
        return (
            "disabled_at",
            "why_disabled_full",
            "signing_secrets",
            "previous_secret_until",
            "recent_deliveries",
            "created_at",
            "updated_at",
        )

    # --- columns and fields -------------------------------------------------------------------
    @admin.display(description=gettext_lazy("description"), ordering="description")
    def name(self, obj: WebhookEndpoint) -> str:
        return obj.description or "—"

    @admin.display(description=gettext_lazy("events"))
    def event_count(self, obj: WebhookEndpoint) -> str:
        types = obj.event_types or []
        if len(types) == len(EventType.values):
            return _("all")
        return ", ".join(str(EventType(t).label) for t in types if t in EventType.values)

    @admin.display(description=gettext_lazy("signing secrets"))
    def signing_secrets(self, obj: WebhookEndpoint) -> str:
        return " ".join(obj.masked_secrets())

    @admin.display(description=gettext_lazy("why disabled"))
    def why_disabled(self, obj: WebhookEndpoint) -> str:
        return Truncator(obj.disabled_reason).chars(120) if not obj.enabled else ""

    @admin.display(description=gettext_lazy("why disabled"))
    def why_disabled_full(self, obj: WebhookEndpoint) -> str:
        return obj.disabled_reason or "—"

    @admin.display(description=gettext_lazy("recent deliveries"))
    def recent_deliveries(self, obj: WebhookEndpoint) -> str:
        rows = list(obj.deliveries.select_related("event").order_by("-id")[:RECENT])
        everything = reverse("admin:webhooks_webhookdelivery_changelist")
        link = format_html(
            '<a href="{}?endpoint__id__exact={}">{}</a>', everything, obj.pk, _("All deliveries")
        )
        if not rows:
            return format_html("{} · {}", _("None yet."), link)
        head = format_html(
            "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            _("created at"),
            _("event"),
            _("status"),
            _("tries"),
            _("HTTP status"),
            _("response time, ms"),
        )
        body = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
            "<td>{}</td></tr>",
            (
                (
                    reverse("admin:webhooks_webhookdelivery_change", args=[d.pk]),
                    d.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    d.event.get_type_display(),
                    d.get_status_display(),
                    d.attempts,
                    d.last_status_code or "—",
                    d.last_duration_ms if d.last_duration_ms is not None else "—",
                )
                for d in rows
            ),
        )
        return format_html("<table>{}{}</table><p>{}</p>", head, body, link)

    # --- pages --------------------------------------------------------------------------------
    def change_view(self, request: HttpRequest, object_id: str, form_url="", extra_context=None):
        endpoint = self.get_object(request, object_id)
        if endpoint is not None and not endpoint.enabled and request.method == "GET":
            self.message_user(
                request,
                _("This endpoint is disabled: %(reason)s")
                % {"reason": endpoint.disabled_reason or "—"},
                messages.WARNING,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            created, secret = services.webhook_endpoint_create(
                url=data["url"],
                description=data.get("description", ""),
                event_types=data["event_types"],
                enabled=data.get("enabled", True),
                secret=data.get("new_secret", ""),
            )
            obj.pk, obj.secret = created.pk, created.secret
            obj._state.adding = False
            request._webhook_secrets = [(created, secret)]  # shown once by response_add
            return
        current = WebhookEndpoint.objects.get(pk=obj.pk)
        changes = {name: data[name] for name in services.CHANGEABLE if name in form.changed_data}
        services.webhook_endpoint_update(
            endpoint=current, changes=changes, by=request.user.get_username()
        )
        if data.get("new_secret"):
            services.webhook_endpoint_rotate_secret(endpoint=current, secret=data["new_secret"])
        elif data.get("end_rotation"):
            services.webhook_endpoint_end_rotation(endpoint=current)

    def response_add(self, request: HttpRequest, obj: WebhookEndpoint, post_url_continue=None):
        made = getattr(request, "_webhook_secrets", None)
        if not made:
            return super().response_add(request, obj, post_url_continue)
        return self._show_secrets(request, made, _("Webhook endpoint created"))

    def _show_secrets(
        self, request: HttpRequest, made: list[tuple[WebhookEndpoint, str]], title: str
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "made": made,
            "opts": self.opts,
        }
        response = TemplateResponse(request, "admin/webhooks/webhookendpoint/secret.html", context)
        response["Cache-Control"] = "no-store"
        return response

    # --- actions ------------------------------------------------------------------------------
    @admin.action(description=gettext_lazy("Enable selected endpoints"), permissions=["change"])
    def enable_selected(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        changed = services.webhook_endpoints_set_enabled(
            queryset=queryset, enabled=True, by=request.user.get_username()
        )
        self.message_user(
            request,
            ngettext(
                "%(count)s endpoint enabled; its waiting deliveries go now.",
                "%(count)s endpoints enabled; their waiting deliveries go now.",
                changed,
            )
            % {"count": changed},
            messages.SUCCESS if changed else messages.WARNING,
        )

    @admin.action(description=gettext_lazy("Disable selected endpoints"), permissions=["change"])
    def disable_selected(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        changed = services.webhook_endpoints_set_enabled(
            queryset=queryset, enabled=False, by=request.user.get_username()
        )
        self.message_user(
            request,
            ngettext(
                "%(count)s endpoint disabled; it gets no new events.",
                "%(count)s endpoints disabled; they get no new events.",
                changed,
            )
            % {"count": changed},
            messages.SUCCESS if changed else messages.WARNING,
        )

    @admin.action(
        description=gettext_lazy("Rotate the secrets of selected endpoints"),
        permissions=["change"],
    )
    def rotate_secrets(
        self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]
    ) -> HttpResponse:
        made = [
            (endpoint, services.webhook_endpoint_rotate_secret(endpoint=endpoint))
            for endpoint in queryset
        ]
        return self._show_secrets(request, made, _("New webhook secrets"))

    @admin.action(
        description=gettext_lazy("Stop signing with the previous secrets"), permissions=["change"]
    )
    def end_rotations(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        ended = sum(services.webhook_endpoint_end_rotation(endpoint=e) for e in queryset)
        self.message_user(
            request,
            ngettext(
                "%(count)s endpoint now signs with its current secret only.",
                "%(count)s endpoints now sign with their current secret only.",
                ended,
            )
            % {"count": ended},
            messages.SUCCESS if ended else messages.WARNING,
        )


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "started_at", "outcome", "status_code", "duration_ms", "response", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = gettext_lazy("tries")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class EventTypeFilter(admin.SimpleListFilter):
    title = gettext_lazy("event")
    parameter_name = "event_type"

    def lookups(self, request: HttpRequest, model_admin):
        return EventType.choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]):
        return queryset.filter(event__type=self.value()) if self.value() else queryset


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """Each event to each endpoint: its state, every try, and a replay."""

    list_display = (
        "created_at",
        "endpoint",
        "event_type",
        "notification",
        "status",
        "attempts",
        "last_status_code",
        "last_duration_ms",
        "next_attempt_at",
    )
    list_filter = ("status", EventTypeFilter, "endpoint")
    list_select_related = ("endpoint", "event")
    show_full_result_count = False  # no COUNT over every delivery for a filtered page
    search_fields = ("=event__notification_id",)
    actions = ["replay_selected"]
    inlines = [AttemptInline]
    fields = (
        "endpoint",
        "event_type",
        "webhook_id",
        "notification",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
        "finished_at",
        "last_status_code",
        "last_duration_ms",
        "last_response",
        "last_error",
        "replay_of",
        "payload",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=gettext_lazy("event"), ordering="event__type")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.get_type_display()

    @admin.display(description=gettext_lazy("notification"))
    def notification(self, obj: WebhookDelivery) -> str:
        pk = obj.event.notification_id
        if pk is None:
            return "—"
        url = reverse("admin:notifications_notification_change", args=[pk])
        return format_html('<a href="{}">#{}</a>', url, pk)

    @admin.display(description="webhook-id")
    def webhook_id(self, obj: WebhookDelivery) -> str:
        return obj.event.message_id

    @admin.display(description=gettext_lazy("payload"))
    def payload(self, obj: WebhookDelivery) -> str:
        text = json.dumps(payloads.payload(obj.event), ensure_ascii=False, indent=2)
        return format_html("<pre>{}</pre>", text)

    @admin.action(description=gettext_lazy("Replay selected deliveries"), permissions=["change"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        result = services.webhook_deliveries_replay(queryset=queryset)
        replayed = len(result.replayed)
        if replayed:
            self.message_user(
                request,
                ngettext(
                    "%(count)s delivery queued again, with the same webhook-id.",
                    "%(count)s deliveries queued again, with the same webhook-id.",
                    replayed,
                )
                % {"count": replayed},
                messages.SUCCESS,
            )
        if result.disabled:
            self.message_user(
                request,
                ngettext(
                    "%(count)s left alone: its endpoint is disabled; enable it first.",
                    "%(count)s left alone: their endpoints are disabled; enable them first.",
                    result.disabled,
                )
                % {"count": result.disabled},
                messages.WARNING,
            )
