"""gunicorn's access log without secrets: the SMS delivery callback's URL carries
SMS_CALLBACK_SECRET as a path part (SMS Aero can only call a URL), so it is masked, and so is
the Telegram webhook's secret header if a log format names it.

Used by ``manage.py runservice`` (``--logger-class``); pass the same option to a gunicorn you
run yourself.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

_CALLBACK = re.compile(r"(/sms/callback/)[^/?\s]+")
_SECRET_HEADER = "{x-telegram-bot-api-secret-token}i"


def mask(text: Any) -> Any:
    """``text`` with the callback secret in any /sms/callback/<secret>/ path masked."""
    return _CALLBACK.sub(r"\1***", text) if isinstance(text, str) else text


class RedactingLogger(Logger):
    """gunicorn's logger whose access-log atoms never show the callback secret."""

    def atoms(self, resp, req, environ, request_time) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U"):
            atoms[key] = mask(atoms.get(key))
        if _SECRET_HEADER in atoms:
            atoms[_SECRET_HEADER] = "***"
        return atoms
