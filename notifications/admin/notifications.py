"""Notifications: the list with live rows, bulk Send/Resend/Cancel, and each notification's
page with its attempts as a timeline."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications import search, selectors, services
from notifications.content import content_for
from notifications.display import (
    allow_email_styles,
    error_text,
    notification_cells,
    status_badge,
)
from notifications.models import (
    Channel,
    DeliveryAttempt,
    Notification,
)


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


class CappedPaginator(Paginator):
    """The list's pages over its newest ``CAP`` rows (as filtered and sorted): it counts at
    most ``CAP + 1`` rows (a COUNT over a LIMIT, never over the whole table) and offers the
    pages of those, so no page skips more than ``CAP`` rows. ``capped``: there are more (the
    list says so; a filter, a search or the other sort order reaches them)."""

    CAP = 10_000

    @cached_property
    def _counted(self) -> int:
        return self.object_list.order_by()[: self.CAP + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._counted, self.CAP)

    @property
    def capped(self) -> bool:
        return self._counted > self.CAP


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
    # Searched by ``get_search_results`` (an id too), each field by an index at any size.
    search_fields = ("user__username", "user__email", "message")
    search_help_text = gettext_lazy(
        "An id, a username or email (or part of one), or words of the message."
    )
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    show_full_result_count = False
    paginator = CappedPaginator
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
        return allow_email_styles(
            super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})
        )

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
                source="admin",
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

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        """Every word matches an id, a username, an email or the message
        (``notifications.search``); no duplicates."""
        return search.notification_search(queryset, search_term), False

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {**(extra_context or {}), "channel_status": selectors.channel_status()}
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None and changelist.paginator.capped:
            # "All 10000 selected" would understate what an action across pages acts on.
            response.context_data["selection_note_all"] = _(
                "All matching notifications selected (more than %(count)s)"
            ) % {"count": changelist.result_count}
        return response

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
