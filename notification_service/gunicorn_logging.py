"""gunicorn's access log without secrets: the SMS delivery callback's URL carries
SMS_CALLBACK_SECRET as a path part (SMS Aero can only call a URL), so it is masked, as is the
signed token in a user's preference page path, and the Telegram webhook's secret header if a
log format names it. With ``LOG_FORMAT=json``, gunicorn's own lines are JSON objects too, like
the service's: its error log through the service's formatter, and each request as an object
of its fields.

Used by ``manage.py runservice`` (``--logger-class``); pass the same option to a gunicorn you
run yourself.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from typing import Any

from gunicorn.glogging import Logger

from notifications.operations.logs import JsonFormatter

_CALLBACK = re.compile(r"(/sms/callback/|/preferences/)[^/?\s]+")
_SECRET_HEADER = "{x-telegram-bot-api-secret-token}i"


def mask(text: Any) -> Any:
    """``text`` with the secret in any /sms/callback/<secret>/ or /preferences/<token>/ path
    masked."""
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

    def setup(self, cfg) -> None:
        super().setup(cfg)
        if json_logs():
            for handler in self.error_log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(self, resp, req, environ, request_time) -> None:
        if not json_logs() or not self.cfg.accesslog:
            super().access(resp, req, environ, request_time)
            return
        atoms = self.atoms(resp, req, environ, request_time)
        record = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "INFO",
            "logger": "gunicorn.access",
            "remote": atoms.get("h"),
            "method": atoms.get("m"),
            "path": atoms.get("U"),
            "status": str(atoms.get("s")),
            "bytes": atoms.get("B"),
            "duration_ms": atoms.get("M"),
            "user_agent": atoms.get("a"),
        }
        self.access_log.info(json.dumps(record, ensure_ascii=False))


def json_logs() -> bool:
    """Whether ``LOG_FORMAT=json`` (read from the environment: gunicorn's master process has
    no Django settings)."""
    return os.environ.get("LOG_FORMAT", "").strip().lower() == "json"
