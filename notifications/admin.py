"""The operator's interface: contacts, notifications, their attempts, bulk actions; templates,
campaigns ("Send a notification…" on users and contacts) and their progress.

Thin by design: actions call ``notifications.services`` and report counts. The dashboard and
the JSON endpoints the pages poll live in ``notifications.views``.
"""

from __future__ import annotations

import segno
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from notifications import api_keys, selectors, services, telegram_bot
from notifications.channels import channel_order
from notifications.composing import check_campaign_content
from notifications.content import content_for
from notifications.display import error_text, notification_cells, progress_box, status_badge
from notifications.forms import ComposeForm, TemplateForm, add_errors
from notifications.models import (
    ApiKey,
    Campaign,
    CampaignSkip,
    Channel,
    DeliveryAttempt,
    Notification,
    Template,
    UserContact,
)
from notifications.rendering import sms_estimate
from notifications.senders.base import DeliveryError
from notifications.senders.telegram import split_text

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

    @admin.action(description=gettext_lazy("Send Telegram invite by email"), permissions=["change"])
    def send_telegram_invite(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._invite(request, queryset, allow_sms=False)

    @admin.action(
        description=gettext_lazy("Send Telegram invite by email, else SMS (paid)"),
        permissions=["change"],
    )
    def send_telegram_invite_sms(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._invite(request, queryset, allow_sms=True)


# --- "Send a notification…" on users and contacts ----------------------------------------


def channel_preview(notification: Notification, audience: int) -> list[dict]:
    """What each channel of the chain gets for the sample recipient, as its sender would
    send it (``content_for``), with Telegram's parts and SMS's segments and cost."""
    labels = dict(Channel.choices)
    rows = []
    for channel in channel_order(notification.channels):
        content = content_for(notification, channel)
        row = {"channel": channel, "label": labels.get(channel, channel), "content": content}
        if channel == "telegram":
            row["parts"] = 1 if content.parse_mode else len(split_text(content.text))
        if channel == "sms":
            estimate = sms_estimate(content.text)
            row["sms"] = estimate
            if estimate.cost is not None:
                row["sms_total"] = estimate.cost * audience
        rows.append(row)
    return rows


class SendNotificationMixin:
    """The "Send a notification…" action: an intermediate page composing one notification for
    every selected row's user (or everyone the list's filter matches), with a preview per
    channel for one sample recipient; confirming creates a campaign."""

    @admin.action(description=gettext_lazy("Send a notification…"), permissions=["campaign"])
    def send_notification(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self.compose(request, queryset)

    def has_campaign_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perms(
            ["notifications.add_campaign", "notifications.add_notification"]
        )

    def users_of(self, queryset: QuerySet) -> QuerySet:
        return queryset

    def compose(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        opts = self.model._meta
        everyone = request.POST.get("select_across") == "1"
        size = queryset.count()
        sample = self.users_of(queryset).order_by("pk").select_related("contact").first()
        form = ComposeForm(request.POST if "_compose" in request.POST else None)
        preview = None
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            content = {
                "message": "" if data["template"] else data["message"],
                "subject": "" if data["template"] else data["subject"],
                "template": data["template"],
                "context": data["context"] if data["template"] else None,
                "channels": data["channels"],
                "send_at": data["send_at"],
            }
            try:
                if "_send" in request.POST:
                    campaign = services.campaign_create(
                        created_by=request.user,
                        user_ids=None
                        if everyone
                        else list(self.users_of(queryset).values_list("pk", flat=True)),
                        audience_model=opts.label_lower,
                        audience_query=request.GET.urlencode() if everyone else None,
                        audience_size=size,
                        sample=sample,
                        name=data["name"],
                        **content,
                    )
                    self.message_user(
                        request,
                        _("Campaign “%(name)s” started for %(count)s recipients.")
                        % {"name": campaign.name, "count": size},
                        messages.SUCCESS,
                    )
                    return redirect("admin:notifications_campaign_change", campaign.pk)
                built = check_campaign_content(sample=sample, **content)
                if built is not None:
                    preview = channel_preview(built, size)
            except ValidationError as err:
                add_errors(form, err)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Send a notification"),
            "opts": opts,
            "form": form,
            "preview": preview,
            "size": size,
            "everyone": everyone,
            "sample": sample,
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "action": request.POST.get("action", "send_notification"),
            "action_index": request.POST.get("index", "0"),
            "media": self.media + form.media,
            "sms_price": settings.NOTIFY_SMS_PRICE,
        }
        return TemplateResponse(request, "admin/notifications/compose.html", context)


@admin.register(UserContact)
class UserContactAdmin(TelegramInviteActions, SendNotificationMixin, admin.ModelAdmin):
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
        (gettext_lazy("Link Telegram"), {"fields": ("telegram_link",)}),
    )

    def users_of(self, queryset: QuerySet) -> QuerySet:
        return User.objects.filter(pk__in=queryset.values("user_id"))

    @admin.display(description=gettext_lazy("Invite link"))
    def telegram_link(self, obj: UserContact | None) -> str:
        """The contact's invite link, as text and as a QR code made here (no web service)."""
        if obj is None or obj.pk is None:
            return _("Save the contact first.")
        if not settings.TELEGRAM_BOT_TOKEN:
            return _("Telegram is not configured (TELEGRAM_BOT_TOKEN).")
        try:
            invite = telegram_bot.page_link(obj)
        except DeliveryError as err:
            return _(
                "No link: the bot's username is not known (%(error)s); set TELEGRAM_BOT_USERNAME."
            ) % {"error": err.message}
        qr = segno.make(invite.url, error="m").svg_inline(scale=4, title=str(_("Invite link")))
        expires = timezone.localtime(invite.expires_at).strftime("%Y-%m-%d %H:%M")
        state = _("Not linked to Telegram yet.")
        if obj.telegram_chat_id:
            state = _("Linked to Telegram chat %(chat)s; a new link moves it to another chat.") % {
                "chat": obj.telegram_chat_id
            }
        return format_html(
            '<div class="telegram-link"><p>{state}</p><a href="{url}" id="telegram-link">{url}</a>'
            "<p>{how}</p><div>{qr}</div></div>",
            state=state,
            url=invite.url,
            how=_(
                "The user opens this link (or scans the code with a phone) and presses Start "
                "in Telegram; the bot then links their chat here. It works once, until "
                "%(expires)s."
            )
            % {"expires": expires},
            qr=mark_safe(qr),  # segno's own SVG of our URL: no user input in it
        )


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


# --- notifications ------------------------------------------------------------------------


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
        label=gettext_lazy("Channels"),
        required=False,
        help_text=gettext_lazy(
            "Channels to try for this notification only, in order, comma-separated "
            "(telegram, email, sms). Blank: every channel, in the service's order."
        ),
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
        "status_badge",
        "channel_cell",
        "sent_at_cell",
        "rounds_cell",
        "short_error",
    )
    list_filter = ("status", "channel", "created_at", "campaign")
    search_fields = ("user__username", "user__email", "message")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    show_full_result_count = False
    list_per_page = 50
    actions = ["send_selected", "resend_selected", "cancel_selected"]
    change_list_template = "admin/notifications/notification/change_list.html"
    change_form_template = "admin/notifications/notification/change_form.html"
    state_fields = (
        "status",
        "channel",
        "campaign",
        "template",
        "created_at",
        "queued_at",
        "sent_at",
        "rounds",
        "next_attempt_at",
        "lease_expires_at",
        "last_error_text",
        "idempotency_key",
    )
    editable_fields = ("user", "subject", "message", "channels", "send_at", "expires_at")

    def get_fieldsets(self, request: HttpRequest, obj=None):
        message = (None, {"fields": ("user", "subject", "message")})
        timing = (_("When"), {"fields": ("channels", "send_at", "expires_at")})
        if obj is None:
            return (message, timing)
        return (message, timing, (_("Delivery"), {"fields": self.state_fields}))

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return ()
        if obj.status == Notification.Status.PENDING and not obj.rendered:
            return self.state_fields
        return (*self.editable_fields, *self.state_fields)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        notification = self.get_object(request, object_id)
        extra = {}
        if notification is not None:
            extra = {
                "attempt_rounds": attempt_rounds(notification),
                "rendered_channels": rendered_channels(notification),
                "live_cells": notification_cells(notification),
            }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

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
            request._notification_not_saved = True  # no "changed successfully" after this
            self.message_user(
                request,
                _(
                    "Not saved: this notification is no longer pending (it was queued or sent "
                    "meanwhile)."
                ),
                messages.ERROR,
            )

    def response_change(self, request: HttpRequest, obj: Notification) -> HttpResponse:
        """Back to its page, as it is now, when the edit was not saved."""
        if getattr(request, "_notification_not_saved", False):
            return redirect(request.path)
        return super().response_change(request, obj)

    @admin.display(description=gettext_lazy("message"))
    def short_message(self, obj: Notification) -> str:
        return Truncator(obj.message).chars(60)

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_badge(self, obj: Notification) -> str:
        return status_badge(obj.status, obj.pk)

    def _cell(self, obj: Notification, name: str) -> str:
        return format_html(
            '<span data-nf-id="{}" data-nf-cell="{}"{}>{}</span>',
            obj.pk,
            name,
            mark_safe(" data-nf-data") if name == "last_error" else "",
            notification_cells(obj)[name],
        )

    @admin.display(description=gettext_lazy("delivered via"), ordering="channel")
    def channel_cell(self, obj: Notification) -> str:
        return self._cell(obj, "channel")

    @admin.display(description=gettext_lazy("sent at"), ordering="sent_at")
    def sent_at_cell(self, obj: Notification) -> str:
        return self._cell(obj, "sent_at")

    @admin.display(description=gettext_lazy("rounds"), ordering="rounds")
    def rounds_cell(self, obj: Notification) -> str:
        return self._cell(obj, "rounds")

    @admin.display(description=gettext_lazy("last error"))
    def short_error(self, obj: Notification) -> str:
        return self._cell(obj, "last_error")

    @admin.display(description=gettext_lazy("last error"))
    def last_error_text(self, obj: Notification) -> str:
        """What the consumer wrote, a known reason in the operator's language (data: marked
        so that it is not taken for the interface's own text)."""
        text = error_text(obj.last_error)
        return format_html("<span data-nf-data>{}</span>", text) if text else ""

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {**(extra_context or {}), "channel_status": selectors.channel_status()}
        return super().changelist_view(request, extra_context)

    def _report(self, request: HttpRequest, result: services.BulkResult, verb: str) -> None:
        level = messages.SUCCESS if result.changed else messages.WARNING
        self.message_user(request, result.describe(verb), level)

    @admin.action(description=gettext_lazy("Send selected notifications"), permissions=["change"])
    def send_selected(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        self._report(request, services.notifications_queue(queryset=queryset), "queued")

    @admin.action(
        description=gettext_lazy("Resend selected notifications (even if sent)"),
        permissions=["change"],
    )
    def resend_selected(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        self._report(request, services.notifications_resend(queryset=queryset), "queued again")

    @admin.action(description=gettext_lazy("Cancel selected notifications"), permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        self._report(request, services.notifications_cancel(queryset=queryset), "cancelled")


def receipt_text(attempt: DeliveryAttempt) -> str:
    """What an SMS's delivery receipts say: status, when, and the provider's detail."""
    if not attempt.receipt_status:
        return ""
    parts = [str(attempt.get_receipt_status_display())]
    if attempt.receipt_at:
        parts.append(timezone.localtime(attempt.receipt_at).strftime("%Y-%m-%d %H:%M:%S"))
    text = " ".join(parts)
    return f"{text}: {attempt.receipt_error}" if attempt.receipt_error else text


def attempt_rounds(notification: Notification) -> list[dict]:
    """The attempts grouped by round, oldest first: the timeline on its page."""
    rounds: dict[int, list] = {}
    for attempt in notification.attempts.order_by("started_at", "id"):
        attempt.shown_error = error_text(attempt.error)
        attempt.shown_receipt = receipt_text(attempt)
        rounds.setdefault(attempt.round, []).append(attempt)
    return [{"round": number, "attempts": attempts} for number, attempts in rounds.items()]


def rendered_channels(notification: Notification) -> list[dict]:
    """What each channel was given, for a notification made from a template."""
    if not notification.rendered:
        return []
    labels = dict(Channel.choices)
    return [
        {
            "label": labels[channel],
            "content": content_for(notification, channel),
            "channel": channel,
        }
        for channel in ("telegram", "email", "sms")
        if channel in notification.rendered
    ]


# --- templates ------------------------------------------------------------------------------


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    form = TemplateForm
    list_display = ("name", "key", "language_versions", "updated_at")
    search_fields = ("name", "key")
    prepopulated_fields = {"key": ("name",)}

    def get_fieldsets(self, request: HttpRequest, obj=None):
        def version(lang: str) -> tuple[str, list[str]]:
            return [f"{part}_{lang}" for part in Template.PARTS]

        return (
            (None, {"fields": ("name", "key", "example_context")}),
            (_("Russian"), {"fields": version("ru")}),
            (_("English"), {"fields": version("en")}),
        )

    @admin.display(description=gettext_lazy("languages"))
    def language_versions(self, obj: Template) -> str:
        return ", ".join(obj.languages()) or "—"


# --- campaigns ------------------------------------------------------------------------------


class CampaignSkipInline(admin.TabularInline):
    model = CampaignSkip
    fields = ("user", "reason", "why")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name_plural = gettext_lazy("skipped recipients (the first 50)")

    def get_queryset(self, request: HttpRequest):
        queryset = super().get_queryset(request).select_related("user")
        ids = list(queryset.order_by("id").values_list("id", flat=True)[:50])
        return queryset.filter(id__in=ids)

    @admin.display(description=gettext_lazy("why"))
    def why(self, obj: CampaignSkip) -> str:
        return skip_detail(obj)


SKIP_CHANNEL_REASONS = {
    "opted_out": gettext_lazy("opted out"),
    "no_address": gettext_lazy("no address"),
}


def skip_detail(skip: CampaignSkip) -> str:
    if skip.detail:
        return skip.detail
    labels = dict(Channel.choices)
    return "; ".join(
        f"{labels.get(channel, channel)}: {SKIP_CHANNEL_REASONS.get(code, code)}"
        for channel, code in skip.channels.items()
    )


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "state",
        "audience_size",
        "recipients",
        "skipped",
        "created_by",
        "created_at",
    )
    list_filter = ("state", "created_at")
    search_fields = ("name",)
    change_form_template = "admin/notifications/campaign/change_form.html"
    inlines = [CampaignSkipInline]
    fields = (
        "name",
        "state",
        "created_by",
        "created_at",
        "template",
        "subject",
        "message",
        "context",
        "channels",
        "send_at",
        "audience",
        "audience_size",
        "recipients",
        "skipped",
        "created_all_at",
        "error",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # campaigns start from "Send a notification…" on users or contacts

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description=gettext_lazy("audience"))
    def audience(self, obj: Campaign) -> str:
        model = Campaign._meta.apps.get_model(obj.audience_model)
        label = model._meta.verbose_name_plural
        if obj.audience_all:
            return _("every one of the %(model)s matching the list's filter “%(query)s”") % {
                "model": label,
                "query": obj.audience_query or _("(none)"),
            }
        return _("%(count)s chosen users") % {"count": len(obj.audience_ids)}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = self.get_object(request, object_id)
        extra = {}
        if campaign is not None:
            extra = {
                "progress_box": progress_box(request, campaign),
                "notifications_url": reverse("admin:notifications_notification_changelist")
                + f"?campaign__id__exact={campaign.pk}",
                "skips_url": reverse("admin:notifications_campaignskip_changelist")
                + f"?campaign__id__exact={campaign.pk}",
            }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})


@admin.register(CampaignSkip)
class CampaignSkipAdmin(admin.ModelAdmin):
    list_display = ("user", "campaign", "reason", "why")
    list_filter = ("reason", "campaign")
    list_select_related = ("user", "campaign")
    search_fields = ("user__username", "user__email")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description=gettext_lazy("why"))
    def why(self, obj: CampaignSkip) -> str:
        return skip_detail(obj)


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
