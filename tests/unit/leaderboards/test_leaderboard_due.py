"""Which finished periods are due, how far back missed ones are looked for, and when one
closes (due.py: pure functions of the board and the clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from workers.processors.leaderboards.definitions import LeaderboardDefinition
from workers.processors.leaderboards.due import (
    CloseVerdict,
    close_verdict,
    due_period,
    ever_due,
    missed_periods,
)


def board(**fields: Any) -> LeaderboardDefinition:
    return LeaderboardDefinition.model_validate({"id": "b", "max_score": 1000, **fields})


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_the_latest_finished_period_is_due_only_after_the_grace() -> None:
    daily = board(reset="daily")
    period = due_period(daily, utc(2026, 11, 30, 0, 4), grace_s=300)
    assert period is not None and period.key == "2026-11-28"  # 11-29 ended 4 min ago
    period = due_period(daily, utc(2026, 11, 30, 0, 5), grace_s=300)
    assert period is not None and period.key == "2026-11-29"


def test_a_board_that_never_resets_is_due_once_it_ended() -> None:
    assert not ever_due(board())  # the lazy closer needs no Kafka client for it
    assert due_period(board(), utc(2026, 11, 30), grace_s=0) is None
    event = board(ends_at=utc(2026, 11, 29, 18))
    assert ever_due(event) and ever_due(board(reset="weekly"))
    assert due_period(event, utc(2026, 11, 29, 17), grace_s=0) is None
    period = due_period(event, utc(2026, 11, 29, 18), grace_s=0)
    assert period is not None and period.key == "all"


def test_missed_periods_go_back_at_most_lookback_periods_oldest_first() -> None:
    daily = board(reset="daily")
    latest = due_period(daily, utc(2026, 11, 30, 1), grace_s=300)
    assert latest is not None and latest.key == "2026-11-29"
    missed = missed_periods(daily, latest, utc(2026, 11, 30, 1), lookback=3)
    assert [p.key for p in missed] == ["2026-11-26", "2026-11-27", "2026-11-28"]
    assert missed_periods(daily, latest, utc(2026, 11, 30, 1), lookback=0) == []


def test_missed_periods_stop_at_the_board_start_and_at_the_retention() -> None:
    now = utc(2026, 11, 30, 1)
    started = board(reset="daily", starts_at=utc(2026, 11, 28))
    latest = due_period(started, now, grace_s=0)
    assert latest is not None
    # 11-28 is the board's first day: nothing before it.
    assert [p.key for p in missed_periods(started, latest, now, lookback=7)] == ["2026-11-28"]
    # Retention one day: 11-28 ended 11-29 00:00, its keys expired 11-30 00:00.
    short = board(reset="daily", retention_days=1)
    latest = due_period(short, now, grace_s=0)
    assert latest is not None
    assert missed_periods(short, latest, now, lookback=7) == []


def test_a_board_with_a_single_period_misses_none() -> None:
    event = board(ends_at=utc(2026, 11, 29))
    latest = due_period(event, utc(2026, 11, 30), grace_s=0)
    assert latest is not None
    assert missed_periods(event, latest, utc(2026, 11, 30), lookback=7) == []


def test_a_due_period_closes_once_consumed_past_or_after_the_longest_wait() -> None:
    since = utc(2026, 11, 30, 0, 5)
    hour = 3600

    def verdict(consumed: bool, waited: timedelta) -> CloseVerdict:
        return close_verdict(
            consumed=consumed, waiting_since=since, now=since + waited, max_wait_s=hour
        )

    assert verdict(False, timedelta(0)) is CloseVerdict.WAIT
    assert verdict(True, timedelta(0)) is CloseVerdict.CLOSE
    assert verdict(False, timedelta(minutes=59)) is CloseVerdict.WAIT
    assert verdict(False, timedelta(hours=1)) is CloseVerdict.OVERDUE
    assert verdict(True, timedelta(hours=2)) is CloseVerdict.CLOSE
