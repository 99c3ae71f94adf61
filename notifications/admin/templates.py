"""Templates: one message per channel and language, checked when saved."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.forms import TemplateForm
from notifications.models import (
    Template,
)


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
            (None, {"fields": ("name", "key", "category", "example_context")}),
            (_("Russian"), {"fields": [*version("ru"), "digest_text_ru"]}),
            (_("English"), {"fields": [*version("en"), "digest_text_en"]}),
            (_("Digest"), {"fields": ("digest_key",)}),
        )

    @admin.display(description=gettext_lazy("languages"))
    def language_versions(self, obj: Template) -> str:
        return ", ".join(obj.languages()) or "—"
