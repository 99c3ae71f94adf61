"""Contacts: how to reach each user, their opt-outs, whether their Telegram is linked,
whether their email address is suppressed, and their preferences (category × channel); the
users' list with each user's contact inline."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.admin.actions import SendNotificationMixin, TelegramInviteActions
from notifications.models import (
    UserContact,
)
from notifications.preferences.admin_forms import UserPreferencesAdminMixin
from notifications.suppression.admin_contacts import ContactSuppressionAdminMixin

User = get_user_model()


@admin.register(UserContact)
class UserContactAdmin(
    ContactSuppressionAdminMixin,
    UserPreferencesAdminMixin,
    TelegramInviteActions,
    SendNotificationMixin,
    admin.ModelAdmin,
):
    list_display = (
        "user",
        "telegram_chat_id",
        "email",
        "phone",
        "language",
        "telegram_opt_out",
        "telegram_blocked",
        "email_opt_out",
        "sms_opt_out",
        "updated_at",
    )
    list_filter = (
        "telegram_opt_out",
        "telegram_blocked",
        "email_opt_out",
        "sms_opt_out",
        "language",
    )
    search_fields = ("user__username", "user__email", "email", "phone", "telegram_chat_id")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    readonly_fields = ("telegram_link",)
    actions = ["send_notification", "send_telegram_invite", "send_telegram_invite_sms"]
    change_form_template = "admin/notifications/usercontact/change_form.html"
    fieldsets = (
        (None, {"fields": ("user", "language")}),
        (
            gettext_lazy("How to reach this user"),
            {"fields": ("telegram_chat_id", "email", "phone")},
        ),
        (
            gettext_lazy("Opt-outs"),
            {"fields": ("telegram_opt_out", "telegram_blocked", "email_opt_out", "sms_opt_out")},
        ),
        (gettext_lazy("When"), {"fields": ("timezone", "quiet_hours")}),
        (gettext_lazy("Link Telegram"), {"fields": ("telegram_link",)}),
    )

    def users_of(self, queryset: QuerySet) -> QuerySet:
        return User.objects.filter(pk__in=queryset.values("user_id"))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"telegram_configured": bool(settings.TELEGRAM_BOT_TOKEN)}
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    @admin.display(description=gettext_lazy("Telegram"))
    def telegram_link(self, obj: UserContact | None) -> str:
        """Whether the contact is linked. The live invite link is shown only on request
        (the "Show a Telegram link" button, for staff who may change contacts): a page
        view never makes or shows one."""
        if obj is None or obj.pk is None:
            return _("Save the contact first.")
        if not settings.TELEGRAM_BOT_TOKEN:
            return _("Telegram is not configured (TELEGRAM_BOT_TOKEN).")
        if obj.telegram_chat_id:
            return _("Linked to Telegram chat %(chat)s; a new link moves it to another chat.") % {
                "chat": obj.telegram_chat_id
            }
        return _("Not linked to Telegram yet.")


class UserContactInline(admin.StackedInline):
    model = UserContact
    can_delete = False
    fields = (
        "telegram_chat_id",
        "email",
        "phone",
        "language",
        "telegram_opt_out",
        "telegram_blocked",
        "email_opt_out",
        "sms_opt_out",
        "timezone",
        "quiet_hours",
    )


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserWithContactAdmin(TelegramInviteActions, SendNotificationMixin, UserAdmin):
    inlines = [UserContactInline]
    actions = ["send_notification", "send_telegram_invite", "send_telegram_invite_sms"]

    def _contacts(self, queryset: QuerySet) -> QuerySet[UserContact]:
        for user in queryset.filter(contact__isnull=True):
            UserContact.objects.get_or_create(user=user)
        return UserContact.objects.filter(user__in=queryset)

    def get_inline_instances(self, request: HttpRequest, obj=None):
        # On the add page the contact doesn't exist yet: the post_save signal creates it.
        return super().get_inline_instances(request, obj) if obj is not None else []
