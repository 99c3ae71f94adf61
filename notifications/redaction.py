"""Keep secrets (bot token, passwords, API keys) out of logs, errors and attempt rows."""

from __future__ import annotations

import logging

from django.conf import settings

# Names of settings whose values must never be shown.
SECRET_SETTINGS = (
    "TELEGRAM_BOT_TOKEN",
    "EMAIL_HOST_PASSWORD",
    "SMSAERO_API_KEY",
    "SMS_SMTP_PASSWORD",
    "SMPP_PASSWORD",
)
MASK = "***"


def secret_values() -> list[str]:
    """The configured secret values, longest first so overlapping ones mask fully."""
    values = {str(getattr(settings, name, "") or "") for name in SECRET_SETTINGS}
    return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every configured secret value replaced by ``***``."""
    for value in secret_values():
        text = text.replace(value, MASK)
    return text


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
