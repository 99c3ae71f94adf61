"""Kept numbers as JSON and back: the dashboard's and a campaign's progress, with their
dates, durations, decimals and tuples, exactly as counted.

Each value is tagged (``{"__dt": "2026-12-07T10:00:00+00:00"}``); a dataclass by its name, and
only the dataclasses named in ``KINDS`` are made back: what is read from the table builds
nothing else.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from notifications.broadcast.services import StarsToday
from notifications.selectors import CampaignProgress, SmsToday
from notifications.statistics import ChannelStats, Dashboard

# The dataclasses a kept value may hold, by name.
KINDS: dict[str, type] = {
    cls.__name__: cls for cls in (Dashboard, ChannelStats, SmsToday, StarsToday, CampaignProgress)
}
TAGS = ("__dc", "__dt", "__td", "__dec", "__tup")


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data; ``TypeError`` for anything ``decode`` could not make back
    as it was (an object not in ``KINDS``, a dict keyed by other than text, or by a tag)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return {"__dt": value.isoformat()}
    if isinstance(value, timedelta):
        return {"__td": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Decimal):
        return {"__dec": str(value)}
    if isinstance(value, tuple):
        return {"__tup": [encode(item) for item in value]}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) and k not in TAGS for k in value):
            raise TypeError(f"cannot keep a dict keyed by {list(value)!r}")
        return {k: encode(v) for k, v in value.items()}
    kind = type(value).__name__
    if dataclasses.is_dataclass(value) and KINDS.get(kind) is type(value):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__dc": kind, **fields}
    raise TypeError(f"cannot keep a {type(value).__qualname__}")


def decode(data: Any) -> Any:
    """What ``encode`` made, made back; ``ValueError`` for a dataclass not in ``KINDS``."""
    if isinstance(data, list):
        return [decode(item) for item in data]
    if not isinstance(data, dict):
        return data
    if "__dt" in data:
        return datetime.fromisoformat(data["__dt"])
    if "__td" in data:
        days, seconds, microseconds = data["__td"]
        return timedelta(days=days, seconds=seconds, microseconds=microseconds)
    if "__dec" in data:
        return Decimal(data["__dec"])
    if "__tup" in data:
        return tuple(decode(item) for item in data["__tup"])
    if "__dc" in data:
        kind = KINDS.get(data["__dc"])
        if kind is None:
            raise ValueError(f"not a kept kind: {data['__dc']!r}")
        return kind(**{k: decode(v) for k, v in data.items() if k != "__dc"})
    return {k: decode(v) for k, v in data.items()}
