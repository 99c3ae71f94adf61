"""How the operator's pages show things: status badges, figures, a campaign's progress box.
Shared by the admin and the views beside it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import display_for_value
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import formats
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext as _

from notifications import selectors
from notifications.models import Campaign, Channel, Notification

Status = Notification.Status
LIVE = (Status.PENDING, Status.SCHEDULED, Status.QUEUED, Status.SENDING)


def percent(value: float | None) -> str:
    return "—" if value is None else formats.number_format(value * 100, 1) + " %"


def money(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"{formats.number_format(value, 2)} {settings.NOTIFY_SMS_CURRENCY}"


def seconds(value: timedelta | None) -> str:
    if value is None:
        return "—"
    total = value.total_seconds()
    if total < 60:
        return _("%(n)s s") % {"n": formats.number_format(total, 1)}
    if total < 3600:
        return _("%(n)s min") % {"n": formats.number_format(total / 60, 1)}
    return _("%(n)s h") % {"n": formats.number_format(total / 3600, 1)}


def status_badge(status: str, pk: int | None = None) -> str:
    """The coloured label of a status; live ones carry the id the list's script polls."""
    label = dict(Status.choices).get(status, status)
    if pk is None:
        return format_html('<span class="nf-badge nf-{}">{}</span>', status, label)
    return format_html(
        '<span class="nf-badge nf-{}" data-nf-id="{}" data-nf-cell="status" '
        'data-nf-status="{}">{}</span>',
        status,
        pk,
        status,
        label,
    )


def notification_cells(notification: Notification) -> dict[str, str]:
    """What the list shows of a notification's delivery, as the admin formats it."""
    empty = admin.site.empty_value_display
    return {
        "status": status_badge(notification.status),
        "channel": notification.get_channel_display() or empty,
        "sent_at": str(display_for_value(notification.sent_at, empty)),
        "rounds": str(notification.rounds),
        "last_error": Truncator(notification.last_error).chars(80) or "",
    }


def notification_summary(notification: Notification) -> str:
    """One sentence on where a notification stands (the contact's test shows it)."""
    if notification.status in (Status.SENT, Status.DELIVERED):
        return _("%(status)s via %(channel)s.") % {
            "status": notification.get_status_display(),
            "channel": notification.get_channel_display(),
        }
    if notification.status in LIVE:
        return _("%(status)s…") % {"status": notification.get_status_display()}
    return _("%(status)s: %(error)s") % {
        "status": notification.get_status_display(),
        "error": Truncator(notification.last_error).chars(300),
    }


def progress_texts(progress: selectors.CampaignProgress) -> dict[str, str]:
    """Every figure of a campaign's progress box, formatted (its page shows them, the poll
    refreshes them)."""
    campaign = progress.campaign
    texts = {
        "state": campaign.get_state_display(),
        "percent": f"{progress.percent} %",
        "finished": _("%(finished)s of %(expected)s finished")
        % {"finished": progress.finished, "expected": progress.expected},
        "created": str(progress.created),
        "skipped": str(campaign.skipped),
        "delivery_rate": percent(progress.delivery_rate),
        "channels": ", ".join(
            f"{label}: {progress.by_channel[name]}"
            for name, label in Channel.choices
            if progress.by_channel.get(name)
        )
        or "—",
        "sms": _("%(count)s SMS, %(segments)s parts, %(cost)s")
        % {
            "count": progress.sms_sent,
            "segments": progress.sms_segments,
            "cost": money(progress.sms_cost),
        },
        "error": campaign.error,
    }
    for status, _label in Status.choices:
        texts[f"status_{status}"] = str(progress.by_status.get(status, 0))
    return texts


def progress_box(request: HttpRequest, campaign: Campaign) -> str:
    """The progress box of a campaign's page, rendered now."""
    progress = selectors.campaign_progress(campaign)
    texts = progress_texts(progress)
    return render_to_string(
        "admin/notifications/campaign/progress.html",
        {
            "campaign": campaign,
            "progress": progress,
            "texts": texts,
            "status_rows": [
                (status, label, texts[f"status_{status}"]) for status, label in Status.choices
            ],
        },
        request=request,
    )
