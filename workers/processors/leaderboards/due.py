"""Which finished periods of a board the processor closes, and when. Pure: no I/O.

- `due_period`: the latest finished period, once `close_grace_s` has passed since its end.
- `missed_periods`: the periods before it that the workers may have missed (down, or no
  traffic, across several resets), at most `close_lookback_periods` of them, never from before
  the board's start nor past the retention of their keys (the caller keeps only those with
  submissions, or closed but never announced).
- `close_verdict`: a due period closes once the consumer group has consumed past its end on
  every input partition (watermark.py), so that what was received before the reset but still
  queued is scored first; or, so that a stuck partition cannot hold prizes forever, once this
  process has waited `close_max_wait_s` for that.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from workers.processors.leaderboards.definitions import LeaderboardDefinition
from workers.processors.leaderboards.periods import (
    LeaderboardPeriod,
    period_at,
    previous_period,
)


class CloseVerdict(StrEnum):
    WAIT = "wait"
    CLOSE = "close"
    #: The group has not consumed past the end, but this process waited long enough.
    OVERDUE = "overdue"


def period_end(board: LeaderboardDefinition, period: LeaderboardPeriod) -> datetime | None:
    """When the period stops taking submissions: its reset, or the board's end if sooner."""
    ends = [t for t in (period.ends_at, board.ends_at) if t is not None]
    return min(ends) if ends else None


def ever_due(board: LeaderboardDefinition) -> bool:
    """Whether any period of the board ends (a reset schedule, or an end date)."""
    return board.reset != "none" or board.ends_at is not None


def _before_start(board: LeaderboardDefinition, period: LeaderboardPeriod) -> bool:
    return bool(board.starts_at and period.ends_at and period.ends_at <= board.starts_at)


def due_period(
    board: LeaderboardDefinition, now: datetime, grace_s: int
) -> LeaderboardPeriod | None:
    """The most recent period that ended at least `grace_s` ago, or None."""
    cutoff = now - timedelta(seconds=grace_s)
    candidate: LeaderboardPeriod | None = None
    if board.ends_at is not None and board.ends_at <= cutoff:
        candidate = period_at(board, board.ends_at - timedelta(microseconds=1))
    elif board.reset != "none":
        candidate = previous_period(board, period_at(board, cutoff))
    if candidate is None or _before_start(board, candidate):
        return None
    return candidate


def missed_periods(
    board: LeaderboardDefinition, latest: LeaderboardPeriod, now: datetime, lookback: int
) -> list[LeaderboardPeriod]:
    """Up to `lookback` periods just before `latest`, oldest first: none that ended before the
    board started, none whose keys have expired (end + retention reached)."""
    if board.reset == "none":
        return []  # a single period: nothing before it
    found: list[LeaderboardPeriod] = []
    period = latest
    for _ in range(lookback):
        period = previous_period(board, period)
        end = period_end(board, period)
        if end is None or _before_start(board, period):
            break
        if end + timedelta(seconds=board.retention_s) <= now:
            break
        found.append(period)
    return found[::-1]


def close_verdict(
    *, consumed: bool, waiting_since: datetime, now: datetime, max_wait_s: int
) -> CloseVerdict:
    """Close a due period once the group consumed past its end (`consumed`: False also when
    that is not known), or anyway once `max_wait_s` passed since this process began waiting."""
    if consumed:
        return CloseVerdict.CLOSE
    if now - waiting_since >= timedelta(seconds=max_wait_s):
        return CloseVerdict.OVERDUE
    return CloseVerdict.WAIT
