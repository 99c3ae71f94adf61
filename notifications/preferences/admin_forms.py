"""A user's preferences in the admin: a "Preferences" section on the contact's change page
(the contact is one-to-one with the user), a table of each choosable category × channel as a
checkbox, saved through ``preference_set``.

Only the boxes the operator changed are written: a box left as shown keeps following the
category's default (or the user's own choice, also one made meanwhile). Staff need
``preferences.view_preference`` to see the section and ``preferences.change_preference`` (and
the right to change the contact) to edit it. No script and no inline style (the admin's
Content-Security-Policy).

``notifications.admin.contacts`` mixes ``UserPreferencesAdminMixin`` into the contact's admin;
this module sits below the admin packages so that it may.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.http import HttpRequest
from django.utils.html import format_html_join
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from notifications.models import Channel
from notifications.preferences.models import Category
from notifications.preferences.services import CategoryState, preference_set, states_of

FIELD = "preferences"
VIEW_PERMISSION = "preferences.view_preference"
CHANGE_PERMISSION = "preferences.change_preference"

# {category key: the channels ticked}
Ticked = dict[str, set[str]]


def ticked(states: list[CategoryState]) -> Ticked:
    return {s.category.key: {c for c, on in s.channels.items() if on} for s in states}


def encode(boxes: Ticked) -> str:
    """``{"news": {"email"}, "promotions": set()}`` → ``"news:email;promotions:"``."""
    return ";".join(
        f"{key}:{','.join(c for c in settings.CHANNELS if c in on)}" for key, on in boxes.items()
    )


def decode(text: str) -> Ticked:
    """``encode``'s text back; pieces that name no channel are left out."""
    boxes: Ticked = {}
    for piece in text.split(";"):
        key, colon, channels = piece.partition(":")
        if key and colon:
            boxes[key] = {c for c in channels.split(",") if c in settings.CHANNELS}
    return boxes


@dataclass(frozen=True)
class Boxes:
    """The table's boxes: those ticked now, and those ticked when the page was first shown
    (carried in a hidden input, also through a page shown again with errors). Only a box
    whose state differs between the two was changed by the operator."""

    ticked: Ticked = field(default_factory=dict)
    shown: Ticked = field(default_factory=dict)

    def changes(self) -> list[tuple[str, str, bool]]:
        """(key, channel, on) of each box the operator changed."""
        return [
            (key, channel, channel in self.ticked.get(key, set()))
            for key, was in self.shown.items()
            if key in self.ticked
            for channel in settings.CHANNELS
            if (channel in self.ticked[key]) != (channel in was)
        ]


class PreferencesGrid(forms.Widget):
    """A table: a row per choosable category, a checkbox per channel (named
    ``<field>.<key>.<channel>``: a key is a slug, without dots; "chosen" beside the boxes
    the user set), and the boxes as shown first in ``<field>.shown``."""

    template_name = "preferences/admin/preferences_grid.html"

    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(attrs)
        self.states: list[CategoryState] = []
        self.always: list[Category] = []

    def get_context(self, name: str, value: Any, attrs: dict | None) -> dict:
        context = super().get_context(name, value, attrs)
        boxes = value if isinstance(value, Boxes) else Boxes()
        language = get_language()
        labels = {channel: str(label) for channel, label in Channel.choices}
        rows = []
        for state in self.states:
            category = state.category
            category_name = category.name(language)
            cells = [
                {
                    "name": f"{name}.{category.key}.{channel}",
                    "id": f"id_{name}.{category.key}.{channel}",
                    "label": f"{category_name}: {labels[channel]}",
                    "checked": channel in boxes.ticked.get(category.key, ()),
                    "chosen": channel in state.chosen,
                }
                for channel in settings.CHANNELS
            ]
            rows.append(
                {
                    "name": category_name,
                    "description": category.description(language),
                    "opt_in": category.opt_in,
                    "cells": cells,
                }
            )
        context["widget"].update(
            rows=rows,
            shown_name=f"{name}.shown",
            shown=encode(boxes.shown),
            channels=[labels[channel] for channel in settings.CHANNELS],
            always=", ".join(category.name(language) for category in self.always),
        )
        return context

    def id_for_label(self, id_: str) -> str:
        return ""  # the label names the table; each box has a label of its own

    def value_from_datadict(self, data, files, name: str) -> Boxes:
        return Boxes(
            ticked={
                s.category.key: {
                    c for c in settings.CHANNELS if f"{name}.{s.category.key}.{c}" in data
                }
                for s in self.states
            },
            shown=decode(str(data.get(f"{name}.shown", ""))),
        )

    def value_omitted_from_data(self, data, files, name: str) -> bool:
        return False  # an unticked box sends nothing, and means off


class PreferencesField(forms.Field):
    """The boxes of the table (``Boxes``)."""

    widget = PreferencesGrid

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", gettext_lazy("Channels per category"))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Boxes:
        return value if isinstance(value, Boxes) else Boxes()

    def has_changed(self, initial: Any, data: Any) -> bool:
        return not self.disabled and bool(self.to_python(data).changes())


class UserPreferencesForm(forms.ModelForm):
    """Adds ``preferences`` to a model form of an object with a ``user`` (the contact)."""

    preferences = PreferencesField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.preferences_user = self.instance.user
        self.preference_states = states_of(self.preferences_user)
        widget = self.fields[FIELD].widget
        widget.states = self.preference_states
        widget.always = list(Category.objects.filter(required=True).order_by("name_en"))
        now = ticked(self.preference_states)
        self.fields[FIELD].initial = Boxes(ticked=now, shown=now)

    def save_preferences(self) -> int:
        """Write each box the operator changed through ``preference_set``; how many changed.
        Raises ``ValidationError`` as ``preference_set`` does (not for boxes of this table)."""
        if FIELD not in self.changed_data:
            return 0
        categories = {state.category.key: state.category for state in self.preference_states}
        return sum(
            preference_set(
                user=self.preferences_user, category=categories[key], channel=channel, enabled=on
            )
            for key, channel, on in self.cleaned_data[FIELD].changes()
        )


class UserPreferencesAdminMixin:
    """For the admin of a model with a ``user``: the user's preferences as a section of the
    change page, editable with the permissions above, else shown as text."""

    def _shows_preferences(self, request: HttpRequest, obj: Any) -> bool:
        return obj is not None and obj.pk is not None and request.user.has_perm(VIEW_PERMISSION)

    def _edits_preferences(self, request: HttpRequest, obj: Any) -> bool:
        return (
            self._shows_preferences(request, obj)
            and request.user.has_perm(CHANGE_PERMISSION)
            and self.has_change_permission(request, obj)
        )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if self._shows_preferences(request, obj):
            description = gettext_lazy(
                "What this user gets, by category and channel. A box the user never set "
                "follows the category's default; saving changes only the boxes you change."
            )
            fieldsets.append(
                (gettext_lazy("Preferences"), {"fields": (FIELD,), "description": description})
            )
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        if self._shows_preferences(request, obj) and not self._edits_preferences(request, obj):
            readonly += (FIELD,)
        return readonly

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs):
        fields = kwargs.pop("fields", None)
        if fields is None:
            fields = flatten_fieldsets(self.get_fieldsets(request, obj))
        form = super().get_form(
            request, obj, change=change, fields=[f for f in fields if f != FIELD], **kwargs
        )
        if self._edits_preferences(request, obj):
            form = type(form.__name__, (UserPreferencesForm, form), {})
        return form

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        if isinstance(form, UserPreferencesForm):
            form.save_preferences()

    @admin.display(description=gettext_lazy("Channels per category"))
    def preferences(self, obj: Any) -> str:
        """The user's preferences as text (for staff who may only look)."""
        language = get_language()
        labels = {channel: str(label) for channel, label in Channel.choices}
        lines = [
            (
                state.category.name(language),
                ", ".join(labels[c] for c, on in state.channels.items() if on) or _("nothing"),
            )
            for state in states_of(obj.user)
        ]
        return format_html_join("", "<div>{}: {}</div>", lines) or _("No categories to choose.")
