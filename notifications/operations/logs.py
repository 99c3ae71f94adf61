"""Structured logs: ``LOG_FORMAT=json`` writes one JSON object per line, carrying the ids of
the notification and campaign being worked on, with secrets masked as in every log.

``bound(notification_id=…, campaign_id=…)`` sets the ids for the code inside it (a context
variable, so each worker thread has its own); ``ContextFilter`` copies them onto every record
logged meanwhile, whatever the format (the plain format shows them as ``[n=12 c=3]``).
``JsonFormatter`` masks secrets in every field it writes, tracebacks included
(``notifications.redaction``). The default format stays human-readable.

Low in the layers: delivery and the tasks import it; it imports only the redaction module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

from notifications.redaction import redact

IDS = ("notification_id", "campaign_id")
_ids: ContextVar[dict[str, int] | None] = ContextVar("notify_log_ids", default=None)


@contextmanager
def bound(**ids: int | None) -> Iterator[None]:
    """Records logged inside carry these ids (``None`` ones are left out)."""
    current = _ids.get() or {}
    token = _ids.set({**current, **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _ids.reset(token)


class ContextFilter(logging.Filter):
    """Puts the bound ids on each record (``record.notification_id``, ``record.context``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _ids.get() or {}
        for name in IDS:
            if name in ids and not hasattr(record, name):
                setattr(record, name, ids[name])
        shown = " ".join(
            f"{name[0]}={getattr(record, name)}" for name in IDS if hasattr(record, name)
        )
        record.context = f" [{shown}]" if shown else ""
        return True


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(item) for item in value]
    return value


class JsonFormatter(BaseJsonFormatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, the bound ids, anything passed as ``extra``, and ``exc_info`` (the
    traceback as text). Every string in it has secrets masked."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("reserved_attrs", [*RESERVED, "context"])
        super().__init__(*args, **kwargs)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = record.getMessage()
        super().add_fields(log_data, record, message_dict)
        log_data.pop("msg", None)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return _masked(log_data)


# What a LogRecord carries that is not worth a field of its own.
RESERVED = (
    "args", "asctime", "created", "exc_info", "exc_text", "filename", "funcName",
    "levelname", "levelno", "lineno", "message", "module", "msecs", "msg", "name",
    "pathname", "process", "processName", "relativeCreated", "stack_info", "thread",
    "threadName", "taskName",
)  # fmt: skip
