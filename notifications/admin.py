"""The operator's interface: contacts, notifications, their attempts, and bulk actions.

Thin by design: actions call ``notifications.services`` and report counts.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import Truncator

from notifications import services
from notifications.channels import channel_order, senders_for
from notifications.models import DeliveryAttempt, Notification, UserContact
from notifications.senders.sms import sms_today

User = get_user_model()


def channel_status() -> list[dict]:
    """Each channel in chain order with whether its transports are configured."""
    rows = []
    for channel in channel_order():
        transports = [(s.transport, s.is_configured()) for s in senders_for(channel)]
        rows.append(
            {
                "channel": channel,
                "configured": any(ok for _, ok in transports),
                "transports": transports,
            }
        )
        if channel == "sms":
            rows[-1]["today"] = sms_today()
    return rows


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


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "short_message",
        "status",
        "channel",
        "sent_at",
        "attempt_count",
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
        "attempt_count",
        "next_attempt_at",
        "lease_expires_at",
        "last_error",
        "idempotency_key",
    )

    def get_inline_instances(self, request: HttpRequest, obj=None):
        # A notification being added has no attempts yet.
        return super().get_inline_instances(request, obj) if obj is not None else []

    def get_fieldsets(self, request: HttpRequest, obj=None):
        message = (None, {"fields": ("user", "subject", "message")})
        if obj is None:
            return (message,)
        return (message, ("Delivery", {"fields": self.state_fields}))

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return ()
        if obj.status == Notification.Status.PENDING:
            return self.state_fields
        return ("user", "subject", "message", *self.state_fields)

    @admin.display(description="message")
    def short_message(self, obj: Notification) -> str:
        return Truncator(obj.message).chars(60)

    @admin.display(description="last error")
    def short_error(self, obj: Notification) -> str:
        return Truncator(obj.last_error).chars(80)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {**(extra_context or {}), "channel_status": channel_status()}
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
