"""Suppressed addresses in the admin: who is suppressed, why, since when and on whose word;
lifting one (an action: the row stays, with who lifted it and when); adding one by hand. The
email provider's events still counted (soft bounces) are listed read-only beside them."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from notifications.suppression.models import Suppression, TrackingEvent
from notifications.suppression.services import (
    normalize_address,
    suppression_create,
    suppression_lift,
)


class ActiveFilter(admin.SimpleListFilter):
    title = gettext_lazy("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("active", _("active")), ("lifted", _("lifted"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "active":
            return queryset.filter(lifted_at__isnull=True)
        if self.value() == "lifted":
            return queryset.filter(lifted_at__isnull=False)
        return queryset


class SuppressionAddForm(forms.ModelForm):
    """Suppress an address by hand: the address and a note."""

    class Meta:
        model = Suppression
        fields = ("address", "detail")

    def clean_address(self) -> str:
        address = normalize_address(self.cleaned_data["address"])
        if not address:
            raise ValidationError(_("Enter an email address."))
        if Suppression.objects.filter(address=address, lifted_at__isnull=True).exists():
            raise ValidationError(_("This address is suppressed already."))
        return address


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = (
        "address",
        "reason",
        "occurred_at",
        "provider",
        "is_active",
        "lifted_at",
        "lifted_by",
    )
    list_filter = (ActiveFilter, "reason", "provider")
    search_fields = ("address",)
    date_hierarchy = "created_at"
    list_select_related = ("lifted_by",)
    actions = ["lift"]
    fieldsets = (
        (None, {"fields": ("address", "reason", "detail")}),
        (
            gettext_lazy("What the provider said"),
            {"fields": ("provider", "event_type", "event_id", "occurred_at", "provider_event")},
        ),
        (
            gettext_lazy("History"),
            {"fields": ("created_at", "created_by", "lifted_at", "lifted_by")},
        ),
    )

    def get_form(self, request: HttpRequest, obj: Suppression | None = None, **kwargs):
        if obj is None:
            kwargs["form"] = SuppressionAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request: HttpRequest, obj: Suppression | None = None):
        if obj is None:
            return ((None, {"fields": ("address", "detail")}),)
        return self.fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Suppression | None = None):
        if obj is None:
            return ()
        return [field for _name, options in self.fieldsets for field in options["fields"]]

    def has_delete_permission(self, request: HttpRequest, obj: Suppression | None = None):
        return False  # lifting keeps the history; retention forgets lifted ones

    def save_model(self, request: HttpRequest, obj: Suppression, form, change: bool) -> None:
        if change:
            return  # nothing on a suppression's page is editable
        created = suppression_create(
            address=form.cleaned_data["address"],
            reason=Suppression.Reason.MANUAL,
            detail=form.cleaned_data["detail"],
            created_by=request.user,
        )
        if created is None:  # suppressed meanwhile: that one is shown
            created = Suppression.objects.get(address=obj.address, lifted_at__isnull=True)
        obj.pk = created.pk

    @admin.display(description=gettext_lazy("active"), boolean=True, ordering="lifted_at")
    def is_active(self, obj: Suppression) -> bool:
        return obj.active

    @admin.action(
        description=gettext_lazy("Lift the selected suppressions"), permissions=["change"]
    )
    def lift(self, request: HttpRequest, queryset: QuerySet[Suppression]) -> None:
        lifted = suppression_lift(suppressions=queryset, user=request.user)
        self.message_user(
            request,
            ngettext(
                "%(count)d suppression lifted: email goes to that address again.",
                "%(count)d suppressions lifted: email goes to those addresses again.",
                lifted,
            )
            % {"count": lifted},
        )


@admin.register(TrackingEvent)
class TrackingEventAdmin(admin.ModelAdmin):
    """What the email provider told us that is still kept: soft bounces being counted, and
    events waiting to be worked off."""

    list_display = ("received_at", "provider", "kind", "address", "occurred_at", "processed_at")
    list_filter = ("kind", "provider")
    search_fields = ("address", "message_id")
    date_hierarchy = "received_at"

    def get_readonly_fields(self, request: HttpRequest, obj: TrackingEvent | None = None):
        return [field.name for field in TrackingEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: TrackingEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TrackingEvent | None = None) -> bool:
        return False
