"""Which period of a board an instant falls in, and how a period is named.

A period is a half-open interval [starts_at, ends_at) in UTC, computed from the board's reset
schedule in its own time zone, and a key that goes into the sorted set's Redis key:
- none: "all" (one period from the board's epoch, never resets);
- daily: the local date, "2026-11-25";
- weekly: the ISO week, "2026-W48" (starts Monday 00:00 local);
- monthly: "2026-11";
- cron: the local start minute, "2026-11-23T0900" (a period runs from one cron match to the
  next), matched on local wall-clock time.
Boundaries are wall-clock times converted with wall_to_utc: a wall time that never occurs (the
clocks jump over it) starts the period at the jump, one that occurs twice at its first
occurrence; a period is then an hour shorter or longer, never missing or overlapping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter  # type: ignore[import-untyped]  # no stubs, no py.typed

from workers.processors.leaderboards.definitions import LeaderboardDefinition
from workers.processors.leaderboards.errors import PeriodError

ALL_TIME = "all"
_CRON_KEY = "%Y-%m-%dT%H%M"


@dataclass(frozen=True, slots=True)
class LeaderboardPeriod:
    """One period of one board: its key and its bounds in UTC (ends_at None: never ends)."""

    key: str
    starts_at: datetime
    ends_at: datetime | None

    def contains(self, instant: datetime) -> bool:
        return self.starts_at <= instant and (self.ends_at is None or instant < self.ends_at)

    def elapsed_s(self, instant: datetime) -> int:
        """Whole seconds since the start: the tie-break input (see encoding.py)."""
        return int((instant - self.starts_at).total_seconds())


def wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant at which the clocks of `zone` show `wall` or later.

    Usually just the conversion; for a wall time that occurs twice (clocks go back) the first
    occurrence; for one that never occurs (clocks jump forward over it) the moment of the jump,
    found by bisecting the hour between the two readings zoneinfo offers.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if second >= first:
        return first
    low, high = second, first  # the jump lies in (low, high]: bisect to the second
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def _local_midnight(board: LeaderboardDefinition, day: date) -> datetime:
    return wall_to_utc(datetime(day.year, day.month, day.day), board.zone)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def _daily(board: LeaderboardDefinition, day: date) -> LeaderboardPeriod:
    return LeaderboardPeriod(
        day.isoformat(),
        _local_midnight(board, day),
        _local_midnight(board, day + timedelta(days=1)),
    )


def _weekly(board: LeaderboardDefinition, monday: date) -> LeaderboardPeriod:
    year, week, _ = monday.isocalendar()
    return LeaderboardPeriod(
        f"{year}-W{week:02d}",
        _local_midnight(board, monday),
        _local_midnight(board, monday + timedelta(days=7)),
    )


def _monthly(board: LeaderboardDefinition, first: date) -> LeaderboardPeriod:
    return LeaderboardPeriod(
        first.strftime("%Y-%m"),
        _local_midnight(board, first),
        _local_midnight(board, _next_month(first)),
    )


def _cron(board: LeaderboardDefinition, start_wall: datetime) -> LeaderboardPeriod:
    following = croniter(board.cron, start_wall).get_next(datetime)
    return LeaderboardPeriod(
        start_wall.strftime(_CRON_KEY),
        wall_to_utc(start_wall, board.zone),
        wall_to_utc(following, board.zone),
    )


def period_at(board: LeaderboardDefinition, instant: datetime) -> LeaderboardPeriod:
    """The period of `board` that contains `instant` (an aware datetime)."""
    local = instant.astimezone(board.zone)
    if board.reset == "none":
        return LeaderboardPeriod(ALL_TIME, board.epoch, None)
    if board.reset == "daily":
        return _daily(board, local.date())
    if board.reset == "weekly":
        return _weekly(board, local.date() - timedelta(days=local.weekday()))
    if board.reset == "monthly":
        return _monthly(board, _month_start(local.date()))
    # Cron runs on naive wall-clock time (croniter's own DST arithmetic shifts matches by an
    # hour across a transition); get_prev is strictly before its base, hence the extra second.
    wall = local.replace(tzinfo=None) + timedelta(seconds=1)
    period = _cron(board, croniter(board.cron, wall).get_prev(datetime))
    # In the second pass of a repeated hour the wall time points back to a period that has
    # already ended (boundaries sit at first occurrences): move on to the one that contains it.
    while period.ends_at is not None and period.ends_at <= instant:
        period = _cron(
            board,
            croniter(
                board.cron,
                period.ends_at.astimezone(board.zone).replace(tzinfo=None) - timedelta(seconds=1),
            ).get_next(datetime),
        )
    return period


def previous_period(board: LeaderboardDefinition, period: LeaderboardPeriod) -> LeaderboardPeriod:
    """The period just before `period`; PeriodError for a board that never resets."""
    if board.reset == "none":
        raise PeriodError(f"{board.id} never resets: it has no previous period")
    return period_at(board, period.starts_at - timedelta(seconds=1))


def period_named(board: LeaderboardDefinition, key: str) -> LeaderboardPeriod:
    """Parse a period key of this board's schedule; PeriodError when it is not one."""
    try:
        period = _parse(board, key)
    except ValueError:
        period = None
    if period is None or period.key != key:
        raise PeriodError(f"{key!r} is not a period of {board.id} (reset {board.reset})")
    return period


def _parse(board: LeaderboardDefinition, key: str) -> LeaderboardPeriod | None:
    if board.reset == "none":
        return period_at(board, board.epoch) if key == ALL_TIME else None
    if board.reset == "daily":
        return _daily(board, date.fromisoformat(key))
    if board.reset == "weekly":
        match = re.fullmatch(r"(\d{4})-W(\d{2})", key)
        if match is None:
            return None
        return _weekly(board, date.fromisocalendar(int(match[1]), int(match[2]), 1))
    if board.reset == "monthly":
        if re.fullmatch(r"\d{4}-\d{2}", key) is None:
            return None
        return _monthly(board, date.fromisoformat(f"{key}-01"))
    start = wall_to_utc(datetime.strptime(key, _CRON_KEY), board.zone)
    period = period_at(board, start)
    return period if period.starts_at == start else None
