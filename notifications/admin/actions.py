"""Admin actions shared by the users' and the contacts' lists: "Send Telegram invite" and
"Send a notification…" (the compose page, with a preview per channel, that starts a
campaign)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications import services
from notifications.channels import channel_order
from notifications.composing import check_campaign_content
from notifications.content import content_for, telegram_preview_html
from notifications.display import allow_email_styles
from notifications.forms import ComposeForm, add_errors
from notifications.models import (
    Channel,
    Notification,
    UserContact,
)
from notifications.preferences.defaults import cached_default
from notifications.preferences.links import public_base_url
from notifications.preferences.models import Category
from notifications.rendering import sms_estimate
from notifications.senders.telegram import split_text


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


def unsubscribe_note(category: Category | None) -> tuple[str, bool]:
    """What the compose preview says of the email's one-click unsubscribe link, and whether
    it is a warning (PUBLIC_BASE_URL unset: bulk mail without one may land in spam)."""
    category = category or cached_default()
    if category.required:
        return _("“%(topic)s” is required: its email carries no unsubscribe link.") % {
            "topic": category.name_en
        }, False
    if not public_base_url():
        return _(
            "PUBLIC_BASE_URL is not set: this email goes without a one-click unsubscribe "
            "link (List-Unsubscribe), and Gmail and Yahoo may file bulk mail without one as "
            "spam."
        ), True
    return _("Carries a one-click unsubscribe link (List-Unsubscribe) for “%(topic)s”.") % {
        "topic": category.name_en
    }, False


def paid_note(budget: Decimal, audience: int, parts: int) -> str:
    """What the compose preview says of a paid broadcast with ``budget`` Stars: how many
    messages it flags, and what flagging all of them would take."""
    price = settings.NOTIFY_TELEGRAM_STARS_PER_MESSAGE
    return _(
        "Paid broadcast: up to %(budget)s Stars at %(price)s Star a message: the first "
        "%(messages)s Telegram messages go flagged (each part of a split text is one), the "
        "rest at the free pace. Flagging all %(all)s would take %(needed)s Stars."
    ) % {
        "budget": formats.number_format(budget, 1),
        "price": formats.number_format(price, 1),
        "messages": int(budget // price),
        "all": audience * parts,
        "needed": formats.number_format(price * audience * parts, 1),
    }


def channel_preview(
    notification: Notification,
    audience: int,
    category: Category | None = None,
    stars_budget: Decimal | None = None,
) -> list[dict]:
    """What each channel of the chain gets for the sample recipient, as its sender would
    send it (``content_for``), with Telegram's parts (and the paid broadcast's budget, when
    ``stars_budget`` is given), SMS's segments and cost, and whether the email carries a
    one-click unsubscribe link (of ``category``, else the default)."""
    labels = dict(Channel.choices)
    rows = []
    for channel in channel_order(notification.channels):
        content = content_for(notification, channel)
        row = {"channel": channel, "label": labels.get(channel, channel), "content": content}
        if channel == "email":
            row["unsubscribe"], row["unsubscribe_warning"] = unsubscribe_note(category)
        if channel == "telegram":
            row["parts"] = 1 if content.parse_mode else len(split_text(content.text))
            if content.parse_mode:  # re-made from Telegram's allow-list, never the raw text
                row["preview_html"] = telegram_preview_html(content.text)
            if stars_budget is not None:
                row["paid"] = paid_note(stars_budget, audience, row["parts"])
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
            local = bool(data["local_time"] and data["send_at"])
            content = {
                "message": "" if data["template"] else data["message"],
                "subject": "" if data["template"] else data["subject"],
                "template": data["template"],
                "context": data["context"] if data["template"] else None,
                "channels": data["channels"],
                # "In each recipient's local time": the wall time as typed, read per recipient.
                "send_at": None if local else data["send_at"],
            }
            when = {
                "local_send_at": (
                    timezone.localtime(data["send_at"]).strftime("%Y-%m-%dT%H:%M") if local else ""
                ),
                "category": data["category"],
            }
            paid = {
                "paid_broadcast": data["paid_broadcast"],
                "stars_budget": data["stars_budget"] if data["paid_broadcast"] else None,
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
                        **when,
                        **paid,
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
                    preview = channel_preview(built, size, data["category"], paid["stars_budget"])
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
        return allow_email_styles(
            TemplateResponse(request, "admin/notifications/compose.html", context)
        )
