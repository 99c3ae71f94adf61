"""Quiet hours in the recipient's zone: parsing, and the end of the window a time falls in,
on ordinary days and on daylight-saving days (Europe/Berlin, America/New_York), proven over
random zones, windows and instants (Hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from notifications.preferences.quiet_hours import Window, parse_window, window_end, zone

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NIGHT = Window(time(22), time(8))


def local(year, month, day, hour, minute=0, where=BERLIN, fold=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=where, fold=fold)


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("22:00-08:00", Window(time(22), time(8))),
        (" 9:30 - 17:45 ", Window(time(9, 30), time(17, 45))),
        ("", None),
        ("off", None),
        ("OFF", None),
    ],
)
def test_windows_are_read(text, window):
    assert parse_window(text) == window


@pytest.mark.parametrize(
    "text", ["25:00-08:00", "22:00", "22:60-08:00", "22-08", "08:00-08:00", "22:00-08:00-09:00"]
)
def test_bad_windows_are_refused_with_a_reason(text):
    with pytest.raises(ValidationError) as refused:
        parse_window(text)
    assert "22:00-08:00" in str(refused.value) or "empty" in str(refused.value)


@pytest.mark.parametrize("name", ["Mars/Olympus", "Europe/berlin ", "../etc/passwd", "UTC+3"])
def test_zones_are_iana_names(name):
    with pytest.raises(ValidationError, match="IANA"):
        zone(name)


def test_outside_the_window_nothing_waits():
    assert window_end(NIGHT, local(2026, 6, 1, 12), BERLIN) is None
    assert window_end(NIGHT, local(2026, 6, 1, 8), BERLIN) is None  # the end is exclusive


def test_a_night_window_ends_the_next_morning_in_local_time():
    end = window_end(NIGHT, local(2026, 6, 1, 23, 30), BERLIN)
    assert end == local(2026, 6, 2, 8)
    assert window_end(NIGHT, local(2026, 6, 2, 3), BERLIN) == local(2026, 6, 2, 8)
    # The same instant is 17:30 in New York: not quiet there.
    assert window_end(NIGHT, local(2026, 6, 1, 23, 30), NEW_YORK) is None


@pytest.mark.parametrize(
    ("now", "where", "expected_utc"),
    [
        # Berlin springs forward on 29 March 2026 (02:00 → 03:00): 22:00-08:00 lasts 9 hours.
        (local(2026, 3, 28, 22, 30), BERLIN, datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),
        # ... and falls back on 25 October (03:00 → 02:00): 11 hours.
        (local(2026, 10, 24, 23), BERLIN, datetime(2026, 10, 25, 7, 0, tzinfo=UTC)),
        # New York: 8 March 2026 forward, 1 November back.
        (local(2026, 3, 8, 1, 30, NEW_YORK), NEW_YORK, datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
        (
            local(2026, 11, 1, 1, 30, NEW_YORK, fold=1),
            NEW_YORK,
            datetime(2026, 11, 1, 13, 0, tzinfo=UTC),
        ),
    ],
)
def test_daylight_saving_days_end_at_local_eight(now, where, expected_utc):
    end = window_end(NIGHT, now, where)
    assert end == expected_utc
    assert end.astimezone(where).time() == time(8)


def test_an_end_in_the_spring_forward_gap_is_the_instant_the_clock_jumps_past_it():
    window = Window(time(22), time(2, 30))  # 02:30 does not exist in Berlin on 29 March
    end = window_end(window, local(2026, 3, 29, 1, 45), BERLIN)
    assert end.astimezone(BERLIN).time() == time(3, 30)  # 01:30 UTC: just past the gap
    assert not window.contains(end.astimezone(BERLIN).timetz())


def test_on_a_fall_back_night_the_first_of_two_equal_local_times_ends_it():
    window = Window(time(22), time(2, 30))  # 02:30 happens twice in Berlin on 25 October
    end = window_end(window, local(2026, 10, 25, 1), BERLIN)
    assert end == local(2026, 10, 25, 2, 30, fold=0).astimezone(UTC)  # 00:30 UTC, in summer time


ZONES = st.sampled_from(
    [
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",  # a 30-minute daylight-saving shift
        "Pacific/Chatham",
        "America/Sao_Paulo",
        "Europe/Moscow",
        "UTC",
    ]
)
MINUTES = st.integers(min_value=0, max_value=24 * 60 - 1)
INSTANTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)


@given(zone_name=ZONES, start=MINUTES, end=MINUTES, now=INSTANTS)
def test_every_deferral_lands_after_now_and_outside_the_window_in_local_time(
    zone_name, start, end, now
):
    if start == end:
        return
    where = ZoneInfo(zone_name)
    window = Window(time(start // 60, start % 60), time(end // 60, end % 60))
    until = window_end(window, now, where)
    inside = window.contains(now.astimezone(where).timetz())
    if not inside:
        assert until is None
        return
    assert until > now
    assert until - now <= timedelta(hours=25)  # a window is under a day, plus a DST hour
    assert not window.contains(until.astimezone(where).timetz())
    # Nothing is held past the first way out: just before the end it is still quiet.
    assert window.contains((until - timedelta(minutes=1)).astimezone(where).timetz())
