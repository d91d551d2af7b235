"""Periods: keys, bounds in the board's time zone, DST, cron, and parsing keys back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.processors.leaderboards.definitions import LeaderboardDefinition
from workers.processors.leaderboards.errors import PeriodError
from workers.processors.leaderboards.periods import period_at, period_named, previous_period


def board(**fields: Any) -> LeaderboardDefinition:
    return LeaderboardDefinition.model_validate({"id": "b", "max_score": 1000, **fields})


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_daily_period_follows_the_local_midnight() -> None:
    ny = board(reset="daily", timezone="America/New_York")
    # 03:00 UTC on the 25th is still the 24th in New York (UTC-5 in November).
    period = period_at(ny, utc(2026, 11, 25, 3, 0))
    assert period.key == "2026-11-24"
    assert period.starts_at == utc(2026, 11, 24, 5, 0)
    assert period.ends_at == utc(2026, 11, 25, 5, 0)


def test_a_dst_day_is_23_hours_long() -> None:
    paris = board(reset="daily", timezone="Europe/Paris")
    period = period_at(paris, utc(2026, 3, 29, 12, 0))
    assert period.ends_at is not None
    assert period.ends_at - period.starts_at == timedelta(hours=23)


def test_weekly_period_is_the_iso_week_from_monday() -> None:
    period = period_at(board(reset="weekly"), utc(2026, 11, 29, 23, 59))
    assert period.key == "2026-W48"
    assert period.starts_at == utc(2026, 11, 23)
    assert period.ends_at == utc(2026, 11, 30)


def test_monthly_period_wraps_the_year() -> None:
    period = period_at(board(reset="monthly"), utc(2026, 12, 31, 12))
    assert period.key == "2026-12"
    assert period.ends_at == utc(2027, 1, 1)


def test_cron_period_runs_from_one_match_to_the_next() -> None:
    cup = board(reset="cron", cron="0 18 * * 5", timezone="Europe/Paris")
    period = period_at(cup, utc(2026, 11, 25, 8))
    assert period.key == "2026-11-20T1800"
    assert period.starts_at == utc(2026, 11, 20, 17)
    assert period.ends_at == utc(2026, 11, 27, 17)
    # An instant exactly on a match starts the new period.
    assert period_at(cup, utc(2026, 11, 27, 17)).key == "2026-11-27T1800"


def test_a_board_that_never_resets_has_one_period_from_its_epoch() -> None:
    forever = board(starts_at="2026-06-01T00:00:00Z")
    period = period_at(forever, utc(2030, 1, 1))
    assert (period.key, period.starts_at, period.ends_at) == ("all", utc(2026, 6, 1), None)
    with pytest.raises(PeriodError):
        previous_period(forever, period)


BOARDS = [
    board(reset="daily", timezone="America/New_York"),
    board(reset="weekly", timezone="Asia/Tokyo"),
    board(reset="monthly", timezone="Europe/Paris"),
    board(reset="cron", cron="30 6 * * 1,4", timezone="Australia/Sydney"),
]
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
)


@given(instants)
def test_every_instant_is_in_exactly_the_period_its_key_names(instant: datetime) -> None:
    for b in BOARDS:
        period = period_at(b, instant)
        assert period.contains(instant)
        assert period_named(b, period.key) == period
        before = previous_period(b, period)
        assert before.ends_at == period.starts_at
        assert before.key != period.key


@pytest.mark.parametrize("key", ["2026-13", "2026-W60", "yesterday", "2026-11-24T1800", "all"])
def test_a_key_of_another_schedule_is_refused(key: str) -> None:
    with pytest.raises(PeriodError):
        period_named(board(reset="monthly"), key)
