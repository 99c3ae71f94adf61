"""The kept numbers go to the table as JSON and come back exactly as counted: the dashboard with
every field filled, a campaign's progress, and nothing but the kinds the dashboard uses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications.broadcast.services import StarsToday
from notifications.kept import codec
from notifications.selectors import CampaignProgress, SmsToday
from notifications.statistics import ChannelStats, Dashboard

NOW = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)


def round_trip(value):
    return codec.decode(json.loads(json.dumps(codec.encode(value))))


def test_a_dashboard_with_every_field_filled_comes_back_as_it_was():
    dashboard = Dashboard(
        period="7d",
        since=NOW - timedelta(days=7),
        now=NOW,
        by_status={"sent": 5, "failed": 1},
        channels=[
            ChannelStats(
                "telegram",
                sent=5,
                delivered=2,
                undelivered=1,
                attempts_failed=3,
                attempts_skipped=1,
                p50=timedelta(seconds=1.5),
                p95=timedelta(days=2),
            )
        ],
        p50=timedelta(milliseconds=20),
        p95=timedelta(seconds=3),
        sms_sent=2,
        sms_segments=3,
        sms_cost=Decimal("7.35"),
        sms_today=SmsToday(sent=1, segments=2, cost=None, limit=100),
        failures=[{"channel": "email", "reason": "timeout", "example": "timed out", "n": 4}],
        queue_due=1,
        queue_later=2,
        sending=3,
        oldest_due=NOW - timedelta(minutes=5),
        series=[(NOW, 1, 2, 3), (NOW + timedelta(hours=1), 0, 0, 0)],
        bucket="hour",
        rolled_until=NOW - timedelta(days=1),
        stars_today=StarsToday(spent=Decimal("1.2"), limit=Decimal("50.0")),
    )
    back = round_trip(dashboard)
    assert back == dashboard
    assert isinstance(back.series[0], tuple) and back.oldest_due.tzinfo is not None


def test_a_campaigns_progress_is_kept_without_its_campaign():
    progress = CampaignProgress(
        campaign=None,
        by_status={"queued": 3},
        by_channel={"sms": 1},
        sms_sent=1,
        sms_segments=1,
        sms_cost=None,
    )
    assert round_trip(progress) == progress


@pytest.mark.parametrize(
    "value",
    [object(), {1: "a"}, {"__dt": "x"}, ChannelStats],
    ids=["an object", "a dict keyed by a number", "a dict keyed by a tag", "a class"],
)
def test_what_could_not_come_back_as_it_was_is_refused(value):
    with pytest.raises(TypeError):
        codec.encode(value)


def test_a_row_naming_another_kind_builds_nothing():
    with pytest.raises(ValueError, match="not a kept kind"):
        codec.decode({"__dc": "Popen", "args": ["sh"]})


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.datetimes(timezones=st.just(UTC))
    | st.timedeltas()
    | st.decimals(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text().filter(lambda k: k not in codec.TAGS), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(values)
def test_any_mix_of_the_kinds_it_keeps_comes_back_equal(value):
    assert round_trip(value) == value
