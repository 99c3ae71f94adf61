"""Quiet hours in the recipient's own time zone: when a non-required notification may not be
sent, and until when it waits.

A window is two local times, ``22:00-08:00`` (it may wrap past midnight; ``08:00-08:00`` is
refused as empty). An instant is inside it when its local time of day, in the recipient's
zone, is at or after the start and before the end. ``window_end(now)`` is the first instant
after ``now`` whose local time is the end: computed on the local calendar and converted with
``zoneinfo``, so daylight-saving days come out right — an end that falls in the spring-forward
gap (02:30 on a night that skips 02:00-03:00) is the instant the clock jumps past it, and on a
fall-back night the first of the two 01:30s is taken. Whatever the zone, the end is after
``now`` and outside the window in local time (a property test checks both).

Pure: no database, no settings read at import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

WINDOW_PATTERN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# What a contact writes to have no quiet hours at all, whatever the service's default.
NONE = "off"


@dataclass(frozen=True)
class Window:
    """Local ``start`` to ``end`` (exclusive); wraps past midnight when ``end <= start``."""

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, local: time) -> bool:
        """Whether a local time of day is inside the window."""
        local = local.replace(tzinfo=None, fold=0)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def read_window(text: str) -> Window | None:
    """``"22:00-08:00"`` → a ``Window``; ``""`` or ``"off"`` → None. Raises ``ValueError``
    (in English, usable before translations are: settings read it) for anything else."""
    text = (text or "").strip()
    if not text or text.lower() == NONE:
        return None
    match = WINDOW_PATTERN.match(text)
    if not match:
        raise ValueError(f"give two 24-hour times such as 22:00-08:00 (or off); got {text!r}")
    hours_a, minutes_a, hours_b, minutes_b = map(int, match.groups())
    if not (hours_a < 24 and hours_b < 24 and minutes_a < 60 and minutes_b < 60):
        raise ValueError(f"give two 24-hour times such as 22:00-08:00 (or off); got {text!r}")
    start, end = time(hours_a, minutes_a), time(hours_b, minutes_b)
    if start == end:
        raise ValueError(f"quiet hours from {start:%H:%M} to {end:%H:%M} are empty")
    return Window(start, end)


def parse_window(text: str) -> Window | None:
    """``read_window``, raising ``ValidationError`` (translated) instead of ``ValueError``."""
    try:
        return read_window(text)
    except ValueError:
        pass
    match = WINDOW_PATTERN.match((text or "").strip())
    if match and match.group(1, 2) == match.group(3, 4):
        raise ValidationError(
            _("Quiet hours from %(time)s to %(time)s are empty; give two different times.")
            % {"time": f"{int(match.group(1)):02d}:{match.group(2)}"},
            code="empty",
        )
    raise ValidationError(
        _("Give quiet hours as two 24-hour times, e.g. 22:00-08:00 (or “off”); got %(value)r.")
        % {"value": (text or "").strip()},
        code="invalid",
    )


def validate_window(text: str) -> None:
    parse_window(text)


def zone_of(contact: object | None) -> tzinfo:
    """A contact's time zone (its ``timezone``), else the service's (TIME_ZONE)."""
    return ZoneInfo(getattr(contact, "timezone", "") or settings.TIME_ZONE)


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raises ``ValidationError`` when there is no such zone."""
    try:
        if not name or name != name.strip() or name.startswith(("/", ".")) or ".." in name:
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            _("%(value)r is not a time zone; give an IANA name such as Europe/Berlin.")
            % {"value": name},
            code="invalid",
        ) from None


def validate_zone(name: str) -> None:
    if name:
        zone(name)


def zone_names() -> list[str]:
    """Every IANA zone name this Python knows, sorted (for choices)."""
    return sorted(available_timezones())


def _at(day: date, local: time, where: tzinfo) -> datetime:
    """The instant of local ``day`` at ``local`` in ``where`` (fold 0: a time in the
    spring-forward gap becomes the instant just past it; an ambiguous one, its first)."""
    return datetime.combine(day, local, tzinfo=where).astimezone(UTC)


def window_end(window: Window, now: datetime, where: tzinfo) -> datetime | None:
    """When the window ``now`` is inside ends (an aware instant after ``now``), or None when
    ``now`` is outside it."""
    local = now.astimezone(where)
    if not window.contains(local.timetz()):
        return None
    day = local.date()
    for offset in range(3):
        end = _at(day + timedelta(days=offset), window.end, where)
        if end > now and not window.contains(end.astimezone(where).timetz()):
            return end
    # A window that spans a whole local day on a day that lost time: the next end of all.
    return _at(day + timedelta(days=3), window.end, where)
