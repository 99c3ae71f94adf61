"""The operator's forms: composing a notification for many, writing a template."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from notifications import services
from notifications.channels import channel_order
from notifications.models import Channel, Template
from notifications.preferences.models import Category
from notifications.rendering import check_template


def channel_choices() -> list[tuple[str, str]]:
    labels = dict(Channel.choices)
    return [(name, labels[name]) for name in channel_order() if name in labels]


def add_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Put a service's ``ValidationError`` next to the fields it names (else on the form)."""
    if hasattr(error, "error_dict"):
        for name, messages in error.message_dict.items():
            form.add_error(name if name in form.fields else None, messages)
    else:
        form.add_error(None, error)


class OptionalJSONField(forms.JSONField):
    """A JSON field that may be left blank, and then shows blank (Django's shows ``null``,
    which the operator never typed, on an empty form and again after every Preview)."""

    def prepare_value(self, value: Any) -> Any:
        return "" if value is None else super().prepare_value(value)


class ComposeForm(forms.Form):
    """One notification for every selected user: a message, or a template and its
    variables."""

    name = forms.CharField(
        label=_("Campaign name"),
        required=False,
        max_length=200,
        help_text=_(
            "For the list of campaigns; blank: the template's name or the message's start."
        ),
    )
    template = forms.ModelChoiceField(
        label=_("Template"),
        queryset=Template.objects.all(),
        required=False,
        empty_label=_("— none: write a message below —"),
    )
    context = OptionalJSONField(
        label=_("Template variables"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_(
            'A JSON object of the template\'s own variables, e.g. {"start": "02:00"}. The '
            "recipient's username, first_name, last_name, full_name and email are always there."
        ),
    )
    subject = forms.CharField(
        label=_("Subject"),
        required=False,
        max_length=200,
        help_text=_("Email subject; blank: the service's default."),
    )
    message = forms.CharField(
        label=_("Message"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 60}),
    )
    channels = forms.MultipleChoiceField(
        label=_("Channels"),
        required=False,
        choices=channel_choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Tried in this order until one delivers; none ticked: every channel."),
    )
    send_at = forms.SplitDateTimeField(
        label=_("Send at"),
        required=False,
        widget=AdminSplitDateTime,
        help_text=_("Blank: now."),
    )
    local_time = forms.BooleanField(
        label=_("In each recipient's local time"),
        required=False,
        help_text=_(
            "Send at that date and time on each recipient's own clock (their time zone, else "
            "the service's): 10:00 is 10:00 in Berlin and 10:00 in New York."
        ),
    )
    category = forms.ModelChoiceField(
        label=_("Category"),
        queryset=Category.objects.all(),
        required=False,
        empty_label=_("— the template's, else the default —"),
        help_text=_(
            "What it is about: recipients who turned it off on every channel are skipped, and "
            "their quiet hours and its caps apply unless it is required."
        ),
    )
    paid_broadcast = forms.BooleanField(
        label=_("Paid broadcast (Telegram)"),
        required=False,
        help_text=_(
            "Telegram takes its messages up to 1,000 a second instead of about 30, for 0.1 "
            "Telegram Star each, paid from the bot's balance, until the budget below is spent; "
            "the rest go out at the free pace."
        ),
    )
    stars_budget = forms.DecimalField(
        label=_("Stars budget"),
        required=False,
        max_digits=12,
        decimal_places=1,
        help_text=_("The most this campaign may spend, in Telegram Stars (0.1 a message)."),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        template, message = cleaned.get("template"), (cleaned.get("message") or "").strip()
        if template is None and not message and "message" not in self.errors:
            self.add_error("message", _("Write a message, or choose a template."))
        if template is not None and message:
            self.add_error("message", _("Give a message or a template, not both."))
        if template is None and cleaned.get("context"):
            self.add_error("context", _("Variables are used only with a template."))
        if cleaned.get("context") is None:
            cleaned["context"] = {}
        if cleaned.get("local_time") and not cleaned.get("send_at"):
            self.add_error("local_time", _("Give the date and time to send at, above."))
        try:
            services.validate_options(
                channels=cleaned.get("channels"), send_at=cleaned.get("send_at")
            )
        except ValidationError as err:
            add_errors(self, err)
        if "stars_budget" not in self.errors:
            try:
                services.validate_paid_broadcast(
                    paid_broadcast=bool(cleaned.get("paid_broadcast")),
                    stars_budget=cleaned.get("stars_budget"),
                    channels=cleaned.get("channels"),
                )
            except ValidationError as err:
                add_errors(self, err)
        return cleaned


class TemplateForm(forms.ModelForm):
    """A template, checked as it is saved: every text compiles in the sandbox and renders
    (for a sample recipient) to what its channel can carry."""

    class Meta:
        model = Template
        fields = (
            "key",
            "name",
            "example_context",
            "category",
            "digest_key",
            *(f"{part}_{lang}" for lang in ("ru", "en") for part in Template.PARTS),
            "digest_text_ru",
            "digest_text_en",
        )
        widgets = {
            f"{part}_{lang}": forms.Textarea(attrs={"rows": 4, "cols": 70})
            for part in ("telegram_text", "email_text", "email_html", "sms_text", "digest_text")
            for lang in ("ru", "en")
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        if not isinstance(cleaned.get("example_context"), dict):
            self.add_error("example_context", _('Give a JSON object, e.g. {"start": "02:00"}.'))
            return cleaned
        names = {f.name for f in Template._meta.fields}
        candidate = Template(**{k: v for k, v in cleaned.items() if k in names})
        try:
            check_template(candidate)
        except ValidationError as err:
            add_errors(self, err)
        return cleaned
