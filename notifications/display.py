"""How the operator's pages show things: status badges, figures, a campaign's progress box.
Shared by the admin and the views beside it."""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import display_for_field, display_for_value
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils import formats
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications import selectors
from notifications.broadcast.models import CampaignStars
from notifications.kept import services as kept
from notifications.models import Campaign, Channel, Notification
from notifications.suppression.models import Suppression
from notifications.suppression.services import MONTHS
from notifications.suppression.services import REASON_TEXT as SUPPRESSION_TEXT

Status = Notification.Status
LIVE = (Status.PENDING, Status.SCHEDULED, Status.QUEUED, Status.SENDING, Status.BATCHED)

# The fixed reasons the chain, the senders and the sweeper write into attempts and last_error
# (in English: they are data, read by logs, the API and tests), shown in the operator's
# language. Anything else, a provider's answer above all, is shown as it was written.
KNOWN_ERRORS = {
    "not configured": gettext_lazy("not configured"),
    "opted out": gettext_lazy("opted out"),
    "no Telegram chat id": gettext_lazy("no Telegram chat id"),
    "no email address": gettext_lazy("no email address"),
    "no phone number": gettext_lazy("no phone number"),
    "the user blocked the bot": gettext_lazy("the user blocked the bot"),
    "the message is blank for Telegram": gettext_lazy("the message is blank for Telegram"),
    "failed permanently earlier in this run": gettext_lazy(
        "failed permanently earlier in this run"
    ),
    "an earlier send in this run may have been accepted (outcome unknown); not sent again so "
    "as not to pay twice": gettext_lazy(
        "an earlier send in this run may have been accepted (outcome unknown); not sent again "
        "so as not to pay twice"
    ),
    "waiting for a pacing slot": gettext_lazy("waiting for a pacing slot"),
    "expired before it could be delivered (its expires_at passed)": gettext_lazy(
        "expired before it could be delivered (its expires_at passed)"
    ),
    # notifications.recovery: LEASE_EXPIRED, LEASE_EXPIRED_LAST
    "lease expired: the worker stopped mid-send without recording the outcome; sent again (if "
    "the provider had accepted the first send, the recipient got it twice)": gettext_lazy(
        "lease expired: the worker stopped mid-send without recording the outcome; sent again "
        "(if the provider had accepted the first send, the recipient got it twice)"
    ),
    "lease expired in the last round (NOTIFY_MAX_ROUNDS): the worker stopped mid-send without "
    "recording the outcome; not sent again": gettext_lazy(
        "lease expired in the last round (NOTIFY_MAX_ROUNDS): the worker stopped mid-send "
        "without recording the outcome; not sent again"
    ),
}
# The same for reasons with a figure or a channel in them: (the whole text, its translation).
KNOWN_ERROR_PATTERNS = [
    (
        re.compile(
            r"the message is partly delivered via (?P<channel>\w+); it is completed there, "
            r"not sent again here"
        ),
        gettext_lazy(
            "the message is partly delivered via %(channel)s; it is completed there, not sent "
            "again here"
        ),
    ),
    (
        re.compile(
            r"daily SMS limit reached: (?P<sent>\d+) of (?P<limit>\d+) sent today "
            r"\(NOTIFY_SMS_DAILY_LIMIT\)"
        ),
        gettext_lazy(
            "daily SMS limit reached: %(sent)s of %(limit)s sent today (NOTIFY_SMS_DAILY_LIMIT)"
        ),
    ),
    (
        re.compile(
            r"daily SMS limit reached: (?P<limit>\d+) sent today \(NOTIFY_SMS_DAILY_LIMIT\)"
        ),
        gettext_lazy("daily SMS limit reached: %(limit)s sent today (NOTIFY_SMS_DAILY_LIMIT)"),
    ),
    (
        re.compile(r"no rounds left: (?P<rounds>\d+) used \(NOTIFY_MAX_ROUNDS\)"),
        gettext_lazy("no rounds left: %(rounds)s used (NOTIFY_MAX_ROUNDS)"),
    ),
    # notifications.suppression.services.skip_reason: "suppressed: hard bounce on 3 Dec"
    (
        re.compile(
            r"suppressed: (?P<suppression>"
            + "|".join(map(re.escape, SUPPRESSION_TEXT.values()))
            + r") on (?P<day>\d{1,2}) (?P<month>"
            + "|".join(MONTHS)
            + r")(?: (?P<year>\d{4}))?"
        ),
        gettext_lazy("suppressed: %(suppression)s on %(date)s"),
    ),
]
# What a reason's figures stand for, shown in the operator's language.
SUPPRESSION_LABELS = {
    SUPPRESSION_TEXT[reason]: label for reason, label in Suppression.Reason.choices
}


def _values(match: re.Match) -> dict[str, str] | None:
    """A known reason's figures, translated where they are words (a channel, a date); None
    when they are not what the reason writes (no such day)."""
    values = match.groupdict()
    if "channel" in values:
        values["channel"] = dict(Channel.choices).get(values["channel"], values["channel"])
    if "suppression" in values:
        values["suppression"] = str(SUPPRESSION_LABELS[values["suppression"]])
        month = MONTHS.index(values["month"]) + 1
        try:  # 2000 was a leap year: 29 Feb is a day
            day = date(int(values["year"] or 2000), month, int(values["day"]))
        except ValueError:
            return None
        values["date"] = formats.date_format(day, "j M Y" if values["year"] else "j M")
    return values


def error_text(error: str) -> str:
    """An attempt's error (or a notification's last error) for the operator: a known reason
    in their language, anything else as it was written."""
    known = KNOWN_ERRORS.get(error)
    if known is not None:
        return str(known)
    for pattern, translated in KNOWN_ERROR_PATTERNS:
        match = pattern.fullmatch(error)
        values = _values(match) if match is not None else None
        if values is not None:
            return str(translated) % values
    return error


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
        "last_error": Truncator(error_text(notification.last_error)).chars(80) or "",
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
        "error": Truncator(error_text(notification.last_error)).chars(300),
    }


COUNTING = "…"  # a figure still being counted


def counting_texts(campaign: Campaign) -> dict[str, str]:
    """The progress box's figures while they are being counted (``kept``): what the
    campaign's row says, and an ellipsis for each count (its page's poll fills them in)."""
    texts = dict.fromkeys(
        ("percent", "finished", "created", "delivery_rate", "channels", "sms"), COUNTING
    )
    texts.update(
        state=campaign.get_state_display(), skipped=str(campaign.skipped), error=campaign.error
    )
    for status, _label in Status.choices:
        texts[f"status_{status}"] = COUNTING
    return texts


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


# Email HTML is previewed in sandboxed iframes (no script, no same origin). A ``srcdoc``
# document inherits the page's Content-Security-Policy, so the page that holds one lets
# inline styles through (email HTML is styled inline); scripts stay refused.
EMAIL_PREVIEW_CSP = {"style-src": ["'unsafe-inline'"]}


def allow_email_styles(response: HttpResponse) -> HttpResponse:
    """``response`` (a page previewing email HTML) with ``EMAIL_PREVIEW_CSP`` added."""
    response._csp_update = EMAIL_PREVIEW_CSP
    return response


# The fields of a campaign's page that move while it is created and sent: the poll refreshes
# them with the progress box, so the whole page moves together.
LIVE_CAMPAIGN_FIELDS = ("state", "recipients", "skipped", "created_all_at", "error")


def campaign_fields(campaign: Campaign) -> dict[str, str]:
    """``LIVE_CAMPAIGN_FIELDS`` as the admin shows them (read-only values), and the Stars
    its paid broadcast spent."""
    fields = {
        name: str(
            display_for_field(
                getattr(campaign, name),
                Campaign._meta.get_field(name),
                admin.site.empty_value_display,
            )
        )
        for name in LIVE_CAMPAIGN_FIELDS
    }
    fields["paid_broadcast"] = paid_broadcast_text(campaign)
    return fields


def paid_broadcast_text(campaign: Campaign) -> str:
    """The Stars a campaign's paid broadcast spent, of its budget; "no" without one."""
    stars = CampaignStars.objects.filter(campaign_id=campaign.pk).first()
    if stars is None:
        return _("no")
    return _("%(spent)s of %(budget)s Telegram Stars spent") % {
        "spent": formats.number_format(stars.spent, 1),
        "budget": formats.number_format(stars.budget, 1),
    }


def progress_box(
    request: HttpRequest, campaign: Campaign
) -> tuple[str, selectors.CampaignProgress | None]:
    """The progress box of a campaign's page, rendered now, and the progress it shows (None
    while it is being counted: then its figures are, and the page's poll fills them in)."""
    progress = kept.campaign_progress(campaign)
    texts = progress_texts(progress) if progress is not None else counting_texts(campaign)
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
    ), progress
