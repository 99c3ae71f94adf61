"""A contact's email suppression on its admin page, and a filter of the contacts list
(``notifications.admin.contacts`` mixes ``ContactSuppressionAdminMixin`` in)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Exists, OuterRef, QuerySet, Value
from django.db.models.functions import Coalesce, Lower, NullIf
from django.http import HttpRequest
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.models import UserContact
from notifications.suppression.models import Suppression
from notifications.suppression.services import normalize_address


def _suppressed() -> Exists:
    """Whether a contact's email address (its own, else its user's) is actively suppressed."""
    address = Lower(Coalesce(NullIf(OuterRef("email"), Value("")), OuterRef("user__email")))
    return Exists(Suppression.objects.filter(address=address, lifted_at__isnull=True))


class EmailSuppressedFilter(admin.SimpleListFilter):
    title = gettext_lazy("email suppressed")
    parameter_name = "email_suppressed"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "yes":
            return queryset.filter(_suppressed())
        if self.value() == "no":
            return queryset.exclude(_suppressed())
        return queryset


class ContactSuppressionAdminMixin:
    """Adds "email suppression" to the contact's page (beside its addresses) and the
    "email suppressed" filter to the list."""

    def get_list_filter(self, request: HttpRequest):
        return (*super().get_list_filter(request), EmailSuppressedFilter)

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return (*super().get_readonly_fields(request, obj), "email_suppression")

    def get_fieldsets(self, request: HttpRequest, obj=None):
        fieldsets = [(name, dict(options)) for name, options in super().get_fieldsets(request, obj)]
        for _name, options in fieldsets:
            fields = list(options.get("fields", ()))
            if "email" in fields:
                fields.insert(fields.index("email") + 1, "email_suppression")
                options["fields"] = fields
                return fieldsets
        return [*fieldsets, (None, {"fields": ("email_suppression",)})]

    @admin.display(description=gettext_lazy("email suppression"))
    def email_suppression(self, obj: UserContact | None) -> str:
        """Whether the contact's email address is suppressed, and a link to its history."""
        address = normalize_address(obj.effective_email) if obj is not None else ""
        if not address:
            return "—"
        url = reverse("admin:suppression_suppression_changelist") + "?" + urlencode({"q": address})
        active = Suppression.objects.filter(address=address, lifted_at__isnull=True).first()
        if active is not None:
            text = _("Suppressed since %(date)s (%(reason)s): email to %(address)s is skipped.") % {
                "date": formats.date_format(timezone.localtime(active.occurred_at)),
                "reason": active.get_reason_display(),
                "address": address,
            }
            return format_html('{} (<a href="{}">{}</a>)', text, url, _("why, and lift it"))
        return format_html('{} (<a href="{}">{}</a>)', _("Not suppressed."), url, _("history"))
