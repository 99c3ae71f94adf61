"""API keys: made here (the key is shown once), revoked here."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from notifications import api_keys
from notifications.models import (
    ApiKey,
)


class ApiKeyStatusFilter(admin.SimpleListFilter):
    title = gettext_lazy("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin):
        return (("active", _("Active")), ("revoked", _("Revoked")))

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys of the applications that call the HTTP API: made here (the key is shown once, on
    the page after Save), revoked by the action."""

    list_display = ("name", "key_start", "scope", "created_at", "last_used_at", "revoked_at")
    list_filter = (ApiKeyStatusFilter, "scope")
    search_fields = ("name", "prefix")
    actions = ["revoke_selected"]
    readonly_fields = ("key_start", "created_at", "last_used_at", "revoked_at")

    def get_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return ("name", "scope")
        return ("name", "scope", "key_start", "created_at", "last_used_at", "revoked_at")

    @admin.display(description=gettext_lazy("key"))
    def key_start(self, obj: ApiKey) -> str:
        return f"{api_keys.KEY_START}{obj.prefix}…" if obj.prefix else ""

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created, raw = api_keys.api_key_create(name=obj.name, scope=obj.scope)
        obj.pk = created.pk
        obj._state.adding = False
        request._api_key_raw = raw  # shown once by response_add

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue=None):
        raw = getattr(request, "_api_key_raw", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "api_key": ApiKey.objects.get(pk=obj.pk),
            "raw_key": raw,
            "api_root": request.build_absolute_uri(reverse("api:notifications")).removesuffix(
                "notifications"
            ),
            "opts": self.opts,
        }
        response = TemplateResponse(request, "admin/notifications/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=gettext_lazy("Revoke selected API keys"), permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = api_keys.api_keys_revoke(queryset=queryset)
        self.message_user(
            request,
            ngettext(
                "%(count)s revoked; clients using it now get 401.",
                "%(count)s revoked; clients using them now get 401.",
                revoked,
            )
            % {"count": revoked},
            messages.SUCCESS if revoked else messages.WARNING,
        )
