"""The operator's pages beside the model admin: the dashboard, and the small JSON endpoints
the admin's pages poll (a campaign's progress, the state of the notifications on a list, a
contact's test). Served under /admin/ through ``admin.site.admin_view`` (login and staff
required); each checks its own permission."""

from __future__ import annotations

from typing import Any

import segno
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.cache import add_never_cache_headers
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from notifications import charts, selectors, services, telegram_bot
from notifications.display import (
    LIVE,
    campaign_fields,
    counting_texts,
    error_text,
    money,
    notification_cells,
    notification_summary,
    percent,
    progress_texts,
    seconds,
)
from notifications.kept import services as kept
from notifications.models import Campaign, Channel, Notification, UserContact
from notifications.senders.base import DeliveryError

Status = Notification.Status
MAX_ID = 2**63 - 1  # the largest id a row can have (a 64-bit signed column)


def _require(request: HttpRequest, *perms: str) -> None:
    if not request.user.has_perms(perms):
        raise PermissionDenied


# --- endpoints ------------------------------------------------------------------------------


@require_GET
def campaign_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """A campaign's counts, formatted, for its page's progress bar."""
    _require(request, "notifications.view_campaign")
    campaign = get_object_or_404(Campaign, pk=pk)
    progress = kept.campaign_progress(campaign)
    if progress is None:  # this process's first count, still under way: polled again
        return JsonResponse(
            {
                "percent": 0,
                "done": False,
                "cancellable": True,
                "text": counting_texts(campaign),
                "fields": campaign_fields(campaign),
            }
        )
    return JsonResponse(
        {
            "percent": progress.percent,
            "done": progress.done,
            "cancellable": progress.cancellable,
            "text": progress_texts(progress),
            "fields": campaign_fields(campaign),
        }
    )


@require_POST
def campaign_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """ "Cancel the rest": stop creating, cancel what still waits."""
    _require(request, "notifications.change_notification")
    campaign = get_object_or_404(Campaign, pk=pk)
    result = services.campaign_cancel(campaign=campaign)
    kept.outdate_campaign(campaign.pk)  # its progress, polled, soon shows the cancel
    messages.add_message(
        request,
        messages.SUCCESS if result.changed else messages.WARNING,
        result.describe("cancelled"),
    )
    return redirect("admin:notifications_campaign_change", pk)


@require_GET
def notification_states(request: HttpRequest) -> JsonResponse:
    """The state of the notifications ``?ids=1,2,3`` (at most 500): the list's live rows."""
    _require(request, "notifications.view_notification")
    try:
        ids = [int(pk) for pk in request.GET.get("ids", "").split(",") if pk.strip()]
    except ValueError:
        return JsonResponse({"error": _("ids must be numbers separated by commas.")}, status=400)
    if any(not 1 <= pk <= MAX_ID for pk in ids):
        return JsonResponse(
            {"error": _("ids must be between 1 and %(max)s.") % {"max": MAX_ID}}, status=400
        )
    return JsonResponse(
        {
            "notifications": {
                str(n.pk): {
                    "status": n.status,
                    "live": n.status in LIVE,
                    "cells": notification_cells(n),
                    "summary": notification_summary(n),
                }
                for n in selectors.notification_states(ids)
            }
        }
    )


@require_POST
def contact_send_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a contact a test notification; JSON for the page's script, else back to the page
    with a message."""
    _require(request, "notifications.add_notification")
    contact = get_object_or_404(UserContact.objects.select_related("user"), pk=pk)
    wants_json = "application/json" in request.headers.get("Accept", "")
    try:
        notification = services.contact_send_test(contact=contact, sent_by=request.user)
    except ValidationError as err:
        if wants_json:
            return JsonResponse({"error": "; ".join(err.messages)}, status=400)
        messages.error(request, "; ".join(err.messages))
        return redirect("admin:notifications_usercontact_change", pk)
    url = reverse("admin:notifications_notification_change", args=[notification.pk])
    if wants_json:
        return JsonResponse(
            {"id": notification.pk, "url": url, "summary": notification_summary(notification)}
        )
    messages.success(
        request,
        _("Test notification #%(id)s queued; its page shows how it went.")
        % {"id": notification.pk},
    )
    return redirect(url)


@require_POST
def contact_telegram_link(request: HttpRequest, pk: int) -> HttpResponse:
    """A contact's live Telegram invite link and its QR code (made here, no web service),
    for staff who may change contacts, on their explicit request: whoever opens the link
    links their chat to this contact. Never cached."""
    _require(request, "notifications.change_usercontact")
    contact = get_object_or_404(UserContact.objects.select_related("user"), pk=pk)
    back = reverse("admin:notifications_usercontact_change", args=[pk])
    if not settings.TELEGRAM_BOT_TOKEN:
        messages.error(request, _("Telegram is not configured (TELEGRAM_BOT_TOKEN)."))
        return redirect(back)
    try:
        invite = telegram_bot.page_link(contact)
    except DeliveryError as err:
        messages.error(
            request,
            _("No link: the bot's username is not known (%(error)s); set TELEGRAM_BOT_USERNAME.")
            % {"error": err.message},
        )
        return redirect(back)
    qr = segno.make(invite.url, error="m").svg_inline(scale=4, title=str(_("Invite link")))
    context = {
        **admin.site.each_context(request),
        "title": _("Telegram link for %(user)s") % {"user": contact.user},
        "opts": UserContact._meta,
        "contact": contact,
        "invite": invite,
        "qr": mark_safe(qr),  # segno's own SVG of our URL: no user input in it
        "back": back,
    }
    response = TemplateResponse(
        request, "admin/notifications/usercontact/telegram_link.html", context
    )
    add_never_cache_headers(response)
    return response


# --- the dashboard ----------------------------------------------------------------------------

CHART_SERIES = (("reached", "#2e7d32"), ("not_reached", "#c62828"), ("other", "#9e9e9e"))


def dashboard(request: HttpRequest) -> TemplateResponse:
    """What the channels did today, in 7 days or 30 days."""
    _require(request, "notifications.view_notification")
    data = kept.dashboard(request.GET.get("period", "today"))
    if data is None:  # this process's first count, still under way: it says so, and reloads
        return TemplateResponse(
            request,
            "admin/notifications/dashboard_counting.html",
            {**admin.site.each_context(request), "title": _("Dashboard")},
        )
    names = {
        "reached": _("sent or delivered"),
        "not_reached": _("failed, undelivered or expired"),
        "other": _("waiting or cancelled"),
    }
    labels = [
        formats.time_format(timezone.localtime(bucket), "H:i")
        if data.bucket == "hour"
        else formats.date_format(timezone.localtime(bucket), "d.m")
        for bucket, *_rest in data.series
    ]
    chart = charts.stacked_bars(
        labels,
        [counts for _bucket, *counts in data.series],
        [(names[key], colour) for key, colour in CHART_SERIES],
        title=_("Notifications created, by outcome"),
    )
    channel_labels = dict(Channel.choices)
    rows: list[dict[str, Any]] = [
        {
            "label": channel_labels.get(stats.channel, stats.channel),
            "sent": stats.sent,
            "failed": stats.attempts_failed,
            "skipped": stats.attempts_skipped,
            "delivered": stats.delivered,
            "undelivered": stats.undelivered,
            "receipt_rate": percent(stats.receipt_rate),
            "p50": seconds(stats.p50),
            "p95": seconds(stats.p95),
        }
        for stats in data.channels
    ]
    today = data.sms_today
    context = {
        **admin.site.each_context(request),
        "title": _("Dashboard"),
        "data": data,
        "periods": [
            ("today", _("Today")),
            ("7d", _("7 days")),
            ("30d", _("30 days")),
        ],
        "rows": rows,
        "chart": chart,
        "delivery_rate": percent(data.delivery_rate),
        "p50": seconds(data.p50),
        "p95": seconds(data.p95),
        "oldest_due_age": seconds(data.oldest_due_age),
        "sms_cost": money(data.sms_cost),
        "sms_today_cost": money(today.cost),
        "sms_cap_share": percent(today.sent / today.limit) if today.limit else "",
        "stars_spent": formats.number_format(data.stars_today.spent, 1),
        "stars_limit": (
            formats.number_format(data.stars_today.limit, 1)
            if data.stars_today.limit is not None
            else None
        ),
        "failures": [
            {
                **row,
                "label": channel_labels.get(row["channel"], row["channel"] or "—"),
                "reason": error_text(row["reason"]),
                # One of its errors, where the reason left something out of it.
                "example": error_text(row["example"]) if row["example"] != row["reason"] else "",
            }
            for row in data.failures
        ],
        "statuses": [
            (label, data.by_status.get(status, 0), status) for status, label in Status.choices
        ],
    }
    return TemplateResponse(request, "admin/notifications/dashboard.html", context)
