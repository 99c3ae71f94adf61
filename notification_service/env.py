"""Typed readers for environment variables.

Every setting of the service comes from the environment (a ``.env`` file is loaded first,
real environment variables win). A malformed value raises ``ImproperlyConfigured`` naming
the variable, so a typo fails at start-up instead of at the first send.
"""

from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    """The variable's value stripped of surrounding blanks, or ``default`` when unset."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip()


def env_bool(name: str, default: bool = False) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); raises on anything else."""
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name} must be one of 1/0, true/false, yes/no, on/off; got {value!r}"
    )


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (any case), ``default`` when unset or blank; raises on another."""
    value = env_str(name).lower() or default
    if value not in choices:
        raise ImproperlyConfigured(
            f"{name} must be one of {', '.join(choices)}; got {os.environ.get(name)!r}"
        )
    return value


def env_int(name: str, default: int | None, minimum: int | None = None) -> int | None:
    """An integer, ``default`` when unset or blank; raises when malformed or below ``minimum``."""
    value = env_str(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer; got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {number}")
    return number


def env_float(name: str, default: float, minimum: float | None = None) -> float:
    """A number, ``default`` when unset or blank; raises when malformed or below ``minimum``."""
    value = env_str(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number; got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {number}")
    return number


def env_list(name: str, default: str = "") -> list[str]:
    """A comma-separated list with blanks dropped."""
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_decimal(name: str, default: str | None, minimum: Decimal | None = None) -> Decimal | None:
    """An exact decimal number (a price), ``default`` when unset or blank; raises when
    malformed or below ``minimum``."""
    value = env_str(name) or default
    if value is None or value == "":
        return None
    try:
        number = Decimal(value.replace(",", "."))
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name} must be a number such as 4.5; got {value!r}") from None
    if not number.is_finite() or (minimum is not None and number < minimum):
        raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {value!r}")
    return number


_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
            "h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0}  # fmt: skip


def env_rate(name: str, default: str) -> tuple[int, float] | None:
    """A rate such as ``600/min`` (periods: s, min, h, day) as (requests, seconds); ``0``
    turns it off (None). Raises on anything else."""
    value = env_str(name) or default
    if value == "0":
        return None
    count, _, period = value.partition("/")
    try:
        requests = int(count)
    except ValueError:
        requests = 0
    seconds = _PERIODS.get(period.strip().lower())
    if requests < 1 or seconds is None:
        raise ImproperlyConfigured(
            f"{name} must be a rate such as 600/min (per s, min, h or day), or 0 for no "
            f"limit; got {value!r}"
        )
    return requests, seconds
