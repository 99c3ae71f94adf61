"""The email channel's skip reason as the operator's pages show it: read back into its parts,
the date in the operator's language, anything unlike it as written."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone, translation

from notifications.display import error_text
from notifications.suppression.models import Suppression
from notifications.suppression.services import REASON_TEXT, skip_reason

Reason = Suppression.Reason


def test_every_reason_the_skip_writes_reads_back_in_english():
    at = datetime(2026, 12, 3, 16, 0, tzinfo=timezone.get_fixed_timezone(0))
    now = datetime(2026, 12, 20, tzinfo=timezone.get_fixed_timezone(0))
    with translation.override("en"):
        for reason in Reason.values:
            text = skip_reason(reason, at, now)
            assert text == f"suppressed: {REASON_TEXT[reason]} on 3 Dec"
            assert error_text(text) == text
        last_year = skip_reason(Reason.HARD_BOUNCE, at, now.replace(year=2027))
        assert last_year == "suppressed: hard bounce on 3 Dec 2026"
        assert error_text(last_year) == last_year


def test_the_date_is_shown_in_the_operators_language():
    with translation.override("ru"):
        assert error_text("suppressed: spam complaint on 29 Feb").endswith("29 Фев")
        assert error_text("suppressed: hard bounce on 3 Dec 2025").endswith("3 Дек 2025")


def test_what_only_looks_like_it_is_shown_as_written():
    for text in (
        "suppressed: hard bounce on 31 Feb",
        "suppressed: a whim on 3 Dec",
        "suppressed by the recipient's choices: email: opted out",
    ):
        with translation.override("ru"):
            assert error_text(text) == text
