"""The operator's interface: contacts, notifications, their attempts, and bulk actions.

Thin by design: actions call ``notifications.services`` and report counts.
"""

from __future__ import annotations

import segno
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from notifications import selectors, services, telegram_bot
from notifications.models import DeliveryAttempt, Notification, UserContact
from notifications.senders.base import DeliveryError

User = get_user_model()


class TelegramInviteActions:
    """The "Send Telegram invite" actions, on contacts and on users."""

    def _contacts(self, queryset: QuerySet) -> QuerySet[UserContact]:
        return queryset

    def _invite(self, request: HttpRequest, queryset: QuerySet, *, allow_sms: bool) -> None:
        try:
            result = services.telegram_invites_send(
                contacts=self._contacts(queryset), allow_sms=allow_sms
            )
        except ValidationError as err:
            self.message_user(request, " ".join(err.messages), messages.ERROR)
            return
        level = messages.SUCCESS if result.sent else messages.WARNING
        self.message_user(request, result.describe(), level)

    @admin.action(description=_("Send Telegram invite by email"), permissions=["change"])
    def send_telegram_invite(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._invite(request, queryset, allow_sms=False)

    @admin.action(
        description=_("Send Telegram invite by email, else SMS (paid)"), permissions=["change"]
    )
    def send_telegram_invite_sms(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._invite(request, queryset, allow_sms=True)


@admin.register(UserContact)
class UserContactAdmin(TelegramInviteActions, admin.ModelAdmin):
    list_display = (
        "user",
        "telegram_chat_id",
        "email",
        "phone",
        "telegram_opt_out",
        "telegram_blocked",
        "email_opt_out",
        "sms_opt_out",
        "updated_at",
    )
    list_filter = ("telegram_opt_out", "telegram_blocked", "email_opt_out", "sms_opt_out")
    search_fields = ("user__username", "user__email", "email", "phone", "telegram_chat_id")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    readonly_fields = ("telegram_link",)
    actions = ["send_telegram_invite", "send_telegram_invite_sms"]
    fieldsets = (
        (None, {"fields": ("user",)}),
        ("How to reach this user", {"fields": ("telegram_chat_id", "email", "phone")}),
        (
            "Opt-outs",
            {"fields": ("telegram_opt_out", "telegram_blocked", "email_opt_out", "sms_opt_out")},
        ),
        (_("Link Telegram"), {"fields": ("telegram_link",)}),
    )

    @admin.display(description=_("Invite link"))
    def telegram_link(self, obj: UserContact | None) -> str:
        """The contact's invite link, as text and as a QR code made here (no web service)."""
        if obj is None or obj.pk is None:
            return _("Save the contact first.")
        if not settings.TELEGRAM_BOT_TOKEN:
            return _("Telegram is not configured (TELEGRAM_BOT_TOKEN).")
        try:
            invite = telegram_bot.page_link(obj)
        except DeliveryError as err:
            return format_html(
                "{} {}",
                _("No link: the bot's username is not known"),
                f"({err.message}); set TELEGRAM_BOT_USERNAME.",
            )
        qr = segno.make(invite.url, error="m").svg_inline(scale=4, title=str(_("Invite link")))
        expires = timezone.localtime(invite.expires_at).strftime("%Y-%m-%d %H:%M")
        state = _("Not linked to Telegram yet.")
        if obj.telegram_chat_id:
            state = _("Linked to Telegram chat {chat}; a new link moves it to another chat.")
            state = state.format(chat=obj.telegram_chat_id)
        return format_html(
            '<div class="telegram-link"><p>{state}</p><a href="{url}" id="telegram-link">{url}</a>'
            "<p>{how}</p><div>{qr}</div></div>",
            state=state,
            url=invite.url,
            how=_(
                "The user opens this link (or scans the code with a phone) and presses Start "
                "in Telegram; the bot then links their chat here. It works once, until {expires}."
            ).format(expires=expires),
            qr=mark_safe(qr),  # segno's own SVG of our URL: no user input in it
        )


class UserContactInline(admin.StackedInline):
    model = UserContact
    can_delete = False
    fields = (
        "telegram_chat_id",
        "email",
        "phone",
        "telegram_opt_out",
        "telegram_blocked",
        "email_opt_out",
        "sms_opt_out",
    )


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserWithContactAdmin(TelegramInviteActions, UserAdmin):
    inlines = [UserContactInline]
    actions = ["send_telegram_invite", "send_telegram_invite_sms"]

    def _contacts(self, queryset: QuerySet) -> QuerySet[UserContact]:
        for user in queryset.filter(contact__isnull=True):
            UserContact.objects.get_or_create(user=user)
        return UserContact.objects.filter(user__in=queryset)

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
        "receipt",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("started_at", "id")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description=_("receipt"))
    def receipt(self, obj: DeliveryAttempt) -> str:
        """What the SMS delivery receipts say: status, when, and the provider's detail."""
        if not obj.receipt_status:
            return "-"
        parts = [obj.get_receipt_status_display()]
        if obj.receipt_at:
            parts.append(timezone.localtime(obj.receipt_at).strftime("%Y-%m-%d %H:%M:%S"))
        text = " ".join(parts)
        return f"{text}: {obj.receipt_error}" if obj.receipt_error else text


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
