"""Keep secrets (bot token, passwords, API keys) out of logs, errors, error pages and attempts."""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, unquote, urlsplit

from django.conf import settings
from django.views.debug import SafeExceptionReporterFilter

# Names of settings whose values must never be shown.
SECRET_SETTINGS = (
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
    "EMAIL_HOST_PASSWORD",
    "SMSAERO_API_KEY",
    "SMS_SMTP_PASSWORD",
    "SMPP_PASSWORD",
    "SMS_CALLBACK_SECRET",
)
# Settings holding URLs whose password part must never be shown.
SECRET_URL_SETTINGS = ("DATABASE_URL", "QUEUE_URL")
MASK = "***"
# A preference page's path carries its signed token (notifications.preferences.links): a
# credential for 90 days, masked wherever the path is logged.
PREFERENCE_PATH = re.compile(r"(/preferences/)[A-Za-z0-9_.:-]{20,}(?=/)")
# A webhook endpoint's signing secret (notifications.webhooks.signing), wherever it turns up.
WEBHOOK_SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{8,}={0,2}")


def _url_password(url: str) -> str:
    try:
        password = urlsplit(url).password
    except ValueError:
        return ""
    return unquote(password) if password else ""


def secret_values() -> list[str]:
    """The configured secret values, longest first so overlapping ones mask fully."""
    values = {str(getattr(settings, name, "") or "") for name in SECRET_SETTINGS}
    anymail = getattr(settings, "ANYMAIL", None) or {}
    values.update(
        str(value)
        for name, value in anymail.items()
        if any(word in name for word in ("KEY", "TOKEN", "SECRET", "PASSWORD"))
    )
    for name in SECRET_URL_SETTINGS:
        password = _url_password(str(getattr(settings, name, "") or ""))
        if password:
            values.update({password, quote(password, safe="")})
    return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every configured secret value, preference page tokens and webhook
    secrets replaced by ``***``."""
    for value in secret_values():
        text = text.replace(value, MASK)
    text = WEBHOOK_SECRET.sub("whsec_" + MASK, text)
    return PREFERENCE_PATH.sub(r"\1" + MASK, text)


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # Tracebacks of HTTP errors carry URLs, and Telegram's URL carries the token.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class SettingsRedactingFilter(SafeExceptionReporterFilter):
    """Django's error-page filter, also hiding the database and queue URLs (and passwords
    wherever they appear in a setting's value)."""

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DATABASE_URL|QUEUE_URL|HUEY|ANYMAIL",
        flags=re.IGNORECASE,
    )

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            cleansed = redact(cleansed)
        return cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        """Each frame's variables, any that would show a secret shown masked instead."""
        cleaned = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            try:
                text = repr(value)
            except Exception:  # noqa: BLE001 - a broken repr shows as Django shows it
                cleaned.append((name, value))
                continue
            masked = redact(text)
            cleaned.append((name, masked if masked != text else value))
        return cleaned
