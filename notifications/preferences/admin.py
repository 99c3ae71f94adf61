"""Categories in the admin: their names, whether they are required or opt-in, their default
channels (checkboxes), cap and digest window. The form checks with ``Category.clean``, so a
bad value is a message beside its field, never a 500. A user's preferences are edited on
their contact's page (``notifications.preferences.admin_forms``)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from notifications.models import Channel
from notifications.preferences.models import Category

UNITS = (
    (86_400, lambda n: ngettext("%(n)d day", "%(n)d days", n)),
    (3_600, lambda n: ngettext("%(n)d hour", "%(n)d hours", n)),
    (60, lambda n: ngettext("%(n)d minute", "%(n)d minutes", n)),
    (1, lambda n: ngettext("%(n)d second", "%(n)d seconds", n)),
)


def duration_text(duration: timedelta) -> str:
    """``timedelta(hours=2)`` → "2 hours": in the largest unit that divides it."""
    seconds = duration.total_seconds()
    for size, words in UNITS:
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return words(n) % {"n": n}
    return str(duration)


class CategoryForm(forms.ModelForm):
    """The category's fields, with its default channels as checkboxes."""

    default_channels = forms.MultipleChoiceField(
        label=capfirst(Category._meta.get_field("default_channels").verbose_name),
        choices=Channel.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "The channels a user starts with for it; none ticked: every channel."
        ),
    )

    class Meta:
        model = Category
        fields = (
            "key",
            "name_en",
            "name_ru",
            "description_en",
            "description_ru",
            "required",
            "opt_in",
            "default_channels",
            "is_default",
            "cap_count",
            "cap_window",
            "over_cap",
            "digest_window",
        )

    def clean_default_channels(self) -> list[str]:
        chosen = self.cleaned_data["default_channels"]
        return [channel for channel in Channel.values if channel in chosen]

    def clean_is_default(self) -> bool:
        """Raises ``ValidationError`` when another category is the default already."""
        wanted = self.cleaned_data["is_default"]
        current = Category.objects.filter(is_default=True).exclude(pk=self.instance.pk).first()
        if wanted and current is not None:
            raise ValidationError(
                _("%(name)s is the default category; untick “default” there first.")
                % {"name": current.name_en}
            )
        return wanted


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    form = CategoryForm
    list_display = (
        "key",
        "name_en",
        "name_ru",
        "required",
        "opt_in",
        "cap",
        "digest",
        "is_default",
    )
    list_display_links = ("key", "name_en")
    list_filter = ("required", "opt_in", "is_default")
    search_fields = ("key", "name_en", "name_ru")
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("key", "name_en", "name_ru", "description_en", "description_ru")}),
        (
            gettext_lazy("Who gets it"),
            {"fields": ("required", "opt_in", "default_channels", "is_default")},
        ),
        (gettext_lazy("Frequency cap"), {"fields": ("cap_count", "cap_window", "over_cap")}),
        (gettext_lazy("Digest"), {"fields": ("digest_window",)}),
        (gettext_lazy("History"), {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description=gettext_lazy("cap"))
    def cap(self, obj: Category) -> str:
        if obj.cap_count is None or obj.cap_window is None:
            return "—"
        return _("%(count)s per %(window)s") % {
            "count": obj.cap_count,
            "window": duration_text(obj.cap_window),
        }

    @admin.display(description=gettext_lazy("digest window"), ordering="digest_window")
    def digest(self, obj: Category) -> str:
        return duration_text(obj.digest_window) if obj.digest_window is not None else "—"
