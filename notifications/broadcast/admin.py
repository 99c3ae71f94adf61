"""Paid broadcast in the admin, read-only: each paid campaign's Stars spent of its budget, and
the Stars of each day. A campaign gets its budget when it is created ("Send a notification…");
its page shows the same figure."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy

from notifications.broadcast.models import CampaignStars, StarsDailyCount


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(CampaignStars)
class CampaignStarsAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "spent", "budget")
    list_select_related = ("campaign",)
    search_fields = ("campaign__name",)
    fields = ("campaign", "spent", "budget")
    readonly_fields = fields

    @admin.display(description=gettext_lazy("Stars spent"))
    def spent(self, obj: CampaignStars) -> Decimal:
        return obj.spent

    @admin.display(description=gettext_lazy("Stars budget"))
    def budget(self, obj: CampaignStars) -> Decimal:
        return obj.budget


@admin.register(StarsDailyCount)
class StarsDailyCountAdmin(ReadOnlyAdmin):
    list_display = ("day", "spent")
    fields = ("day", "spent")
    readonly_fields = fields

    @admin.display(description=gettext_lazy("Stars spent"))
    def spent(self, obj: StarsDailyCount) -> Decimal:
        return obj.spent
