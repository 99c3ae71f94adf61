"""What providers call: Telegram's webhook and SMS Aero's delivery callbacks.

Both check their secret in constant time and change nothing when it is wrong.
"""

from __future__ import annotations

import hmac
import json
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from notifications import receipts, telegram_bot

logger = logging.getLogger(__name__)


def _same(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


@csrf_exempt
@require_POST
def telegram_webhook(request: HttpRequest) -> HttpResponse:
    """``POST /telegram/webhook/``: one update from Telegram.

    403 without the ``X-Telegram-Bot-Api-Secret-Token`` header TELEGRAM_WEBHOOK_SECRET; 400
    for a body that is not an update; else 200, also for updates ignored or seen before (so
    Telegram does not send them again).
    """
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not _same(given, settings.TELEGRAM_WEBHOOK_SECRET) or not settings.TELEGRAM_BOT_TOKEN:
        return JsonResponse({"ok": False, "error": "wrong or missing secret token"}, status=403)
    try:
        update = json.loads(request.body)
        telegram_bot.process_update(update)
    except telegram_bot.IgnoredUpdate as err:  # not Telegram's, and not to be sent again
        logger.warning("Telegram webhook: update ignored: %s", err)
        return JsonResponse({"ok": True, "ignored": str(err)})
    except ValueError as err:  # not JSON (JSONDecodeError is a ValueError), or not an update
        return JsonResponse({"ok": False, "error": f"not a Telegram update: {err}"}, status=400)
    return JsonResponse({"ok": True})


def _callback_fields(request: HttpRequest) -> dict:
    """The callback's fields: a JSON object, else the form fields."""
    if request.body[:1] in (b"{", b"["):
        try:
            data = json.loads(request.body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
    return request.POST.dict()


@csrf_exempt
@require_POST
def sms_callback(request: HttpRequest, secret: str) -> HttpResponse:
    """``POST /sms/callback/<SMS_CALLBACK_SECRET>/``: SMS Aero reports an SMS's status.

    404 for a wrong secret; 400 for a body with no message id or numeric status; else 200,
    also for an id not known (yet: it is kept and matched when its send is recorded).
    """
    if not _same(secret, settings.SMS_CALLBACK_SECRET):
        return HttpResponse(status=404)
    fields = _callback_fields(request)
    try:
        receipt = receipts.smsaero_receipt(fields)
    except ValueError as err:
        logger.warning("SMS Aero callback not understood (%s); fields: %s", err, sorted(fields))
        return JsonResponse({"ok": False, "error": str(err)}, status=400)
    receipts.record(receipt)
    return JsonResponse({"ok": True})
