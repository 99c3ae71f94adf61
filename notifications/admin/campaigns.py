"""Campaigns: each one's page with its live progress, and the recipients it skipped."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from notifications.display import paid_broadcast_text, progress_box
from notifications.models import (
    Campaign,
    CampaignSkip,
    Channel,
)


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
    "suppressed": gettext_lazy("address suppressed"),
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
        "paid_broadcast",
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

    @admin.display(description=gettext_lazy("paid broadcast (Telegram)"))
    def paid_broadcast(self, obj: Campaign) -> str:
        return paid_broadcast_text(obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = self.get_object(request, object_id)
        extra = {}
        if campaign is not None:
            box, progress = progress_box(request, campaign)
            extra = {
                # Django's "View %s" can't decline the name ("Просмотреть рассылка").
                "title": pgettext("admin page title", "View campaign"),
                "progress_box": box,
                # While its progress is being counted, the button is offered: a cancel
                # with nothing left says so.
                "cancellable": progress is None or progress.cancellable,
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

    def change_view(self, request, object_id, form_url="", extra_context=None):
        title = {"title": pgettext("admin page title", "View skipped recipient")}
        return super().change_view(request, object_id, form_url, {**title, **(extra_context or {})})

    @admin.display(description=gettext_lazy("why"))
    def why(self, obj: CampaignSkip) -> str:
        return skip_detail(obj)
