"""The operator's interface: contacts, notifications, their attempts, and bulk actions.

Thin by design: actions call ``notifications.services`` and report counts.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.text import Truncator

from notifications import api_keys, selectors, services
from notifications.models import ApiKey, DeliveryAttempt, Notification, UserContact

User = get_user_model()


@admin.register(UserContact)
class UserContactAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "telegram_chat_id",
        "email",
        "phone",
        "telegram_opt_out",
        "email_opt_out",
        "sms_opt_out",
        "updated_at",
    )
    list_filter = ("telegram_opt_out", "email_opt_out", "sms_opt_out")
    search_fields = ("user__username", "user__email", "email", "phone", "telegram_chat_id")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    fieldsets = (
        (None, {"fields": ("user",)}),
        ("How to reach this user", {"fields": ("telegram_chat_id", "email", "phone")}),
        ("Opt-outs", {"fields": ("telegram_opt_out", "email_opt_out", "sms_opt_out")}),
    )


class UserContactInline(admin.StackedInline):
    model = UserContact
    can_delete = False
    fields = (
        "telegram_chat_id",
        "email",
        "phone",
        "telegram_opt_out",
        "email_opt_out",
        "sms_opt_out",
    )


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserWithContactAdmin(UserAdmin):
    inlines = [UserContactInline]

    def get_inline_instances(self, request: HttpRequest, obj=None):
        # On the add page the contact doesn't exist yet: the post_save signal creates it.
        return super().get_inline_instances(request, obj) if obj is not None else []


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = (
        "round",
        "channel",
        "transport",
        "outcome",
        "error",
        "provider_message_id",
        "started_at",
        "duration_ms",
        "segments",
        "cost",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("started_at", "id")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ChannelsField(forms.CharField):
    """The chain for one notification as comma-separated names; blank: the service's."""

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return ",".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [name.strip() for name in text.split(",") if name.strip()]


class NotificationForm(forms.ModelForm):
    channels = ChannelsField(
        required=False,
        help_text="Channels to try for this notification only, in order, comma-separated "
        "(telegram, email, sms). Blank: every channel, in the service's order.",
    )

    class Meta:
        model = Notification
        fields = ("user", "subject", "message", "channels", "send_at", "expires_at")

    def clean(self):
        cleaned = super().clean()
        try:
            services.validate_options(
                channels=cleaned.get("channels"),
                send_at=cleaned.get("send_at"),
                expires_at=cleaned.get("expires_at"),
                checking_expiry=self.instance._state.adding or "expires_at" in self.changed_data,
            )
        except ValidationError as err:
            raise ValidationError(err.message_dict) from None
        return cleaned


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    form = NotificationForm
    list_display = (
        "id",
        "user",
        "short_message",
        "status",
        "channel",
        "sent_at",
        "rounds",
        "short_error",
    )
    list_filter = ("status", "channel", "created_at")
    search_fields = ("user__username", "user__email", "message")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    show_full_result_count = False
    list_per_page = 50
    inlines = [DeliveryAttemptInline]
    actions = ["send_selected", "resend_selected", "cancel_selected"]
    change_list_template = "admin/notifications/notification/change_list.html"
    state_fields = (
        "status",
        "channel",
        "created_at",
        "queued_at",
        "sent_at",
        "rounds",
        "next_attempt_at",
        "lease_expires_at",
        "last_error",
        "idempotency_key",
    )
    editable_fields = ("user", "subject", "message", "channels", "send_at", "expires_at")

    def get_inline_instances(self, request: HttpRequest, obj=None):
        # A notification being added has no attempts yet.
        return super().get_inline_instances(request, obj) if obj is not None else []

    def get_fieldsets(self, request: HttpRequest, obj=None):
        message = (None, {"fields": ("user", "subject", "message")})
        timing = ("When", {"fields": ("channels", "send_at", "expires_at")})
        if obj is None:
            return (message, timing)
        return (message, timing, ("Delivery", {"fields": self.state_fields}))

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return ()
        if obj.status == Notification.Status.PENDING:
            return self.state_fields
        return (*self.editable_fields, *self.state_fields)

    def save_model(self, request: HttpRequest, obj: Notification, form, change: bool) -> None:
        """New: created (and queued) by the service. Changed: only the edited fields, and
        only while it is still pending, so a worker's writes are never overwritten."""
        if not change:
            created = services.notification_create(
                user=obj.user,
                message=obj.message,
                subject=obj.subject,
                channels=obj.channels,
                send_at=obj.send_at,
                expires_at=obj.expires_at,
            )
            obj.pk = created.pk
            obj.status = created.status
            obj._state.adding = False
            return
        edited = [name for name in form.changed_data if name in self.editable_fields]
        if not services.notification_update_pending(notification=obj, fields=edited):
            self.message_user(
                request,
                "Not saved: this notification is no longer pending (it was queued or sent "
                "meanwhile).",
                messages.ERROR,
            )

    @admin.display(description="message")
    def short_message(self, obj: Notification) -> str:
        return Truncator(obj.message).chars(60)

    @admin.display(description="last error")
    def short_error(self, obj: Notification) -> str:
        return Truncator(obj.last_error).chars(80)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {**(extra_context or {}), "channel_status": selectors.channel_status()}
        return super().changelist_view(request, extra_context)

    def _report(self, request: HttpRequest, result: services.BulkResult, verb: str) -> None:
        level = messages.SUCCESS if result.changed else messages.WARNING
        self.message_user(request, result.describe(verb), level)

    @admin.action(description="Send selected notifications", permissions=["change"])
    def send_selected(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        self._report(request, services.notifications_queue(queryset=queryset), "queued")

    @admin.action(
        description="Resend selected notifications (even if sent)", permissions=["change"]
    )
    def resend_selected(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        self._report(request, services.notifications_resend(queryset=queryset), "queued again")

    @admin.action(description="Cancel selected notifications", permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        self._report(request, services.notifications_cancel(queryset=queryset), "cancelled")


class ApiKeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin):
        return (("active", "Active"), ("revoked", "Revoked"))

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

    @admin.display(description="key")
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

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = api_keys.api_keys_revoke(queryset=queryset)
        self.message_user(
            request,
            f"{revoked} revoked; clients using {'it' if revoked == 1 else 'them'} now get 401.",
            messages.SUCCESS if revoked else messages.WARNING,
        )
