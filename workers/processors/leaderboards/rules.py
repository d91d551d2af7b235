"""A board's rules as plain numbers, for the per-event checks of the hot path.

The processor checks every submission before scoring (board open, score in range, which period,
which tie-break). Doing that with datetimes, the pydantic definition's properties and the codec
object cost more per event than the scoring itself, so each board's rules are computed once
here, instants are integer microseconds since the Unix epoch (the gateway's received_at has no
finer precision that matters: ties are resolved to the second), and the current period's bounds
are kept as integers too. Same results as LeaderboardDefinition.is_open_at, period_at and
SortKeyCodec.tie_break; the unit tests compare them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workers.processors.leaderboards.definitions import LeaderboardDefinition
from workers.processors.leaderboards.periods import LeaderboardPeriod, period_at

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NEVER = 2**63


def micros(instant: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (an aware datetime)."""
    return (instant - _EPOCH) // _MICROSECOND


def instant_of(us: int) -> datetime:
    """The aware UTC datetime of `micros`."""
    return _EPOCH + timedelta(microseconds=us)


class BoardRules:
    """One board's checks and tie-break as integers, with its current period remembered."""

    __slots__ = (
        "_flip",
        "_top",
        "board",
        "end_us",
        "id",
        "max_score",
        "min_score",
        "negate",
        "opens_us",
        "period",
        "shuts_us",
        "start_us",
    )

    def __init__(self, board: LeaderboardDefinition) -> None:
        self.board = board
        self.id = board.id
        self.min_score = board.min_score
        self.max_score = board.max_score
        self.negate = board.operator == "decrement"
        self.opens_us = micros(board.starts_at) if board.starts_at else -_NEVER
        self.shuts_us = micros(board.ends_at) if board.ends_at else _NEVER
        codec = board.codec
        self._top = codec.multiplier - 1
        self._flip = codec.better == "higher"
        self.period: LeaderboardPeriod | None = None
        self.start_us = self.end_us = 0

    def is_open_at(self, us: int) -> bool:
        return self.opens_us <= us < self.shuts_us

    def period_at(self, us: int) -> LeaderboardPeriod:
        """The period containing `us`, remembered (nearly every event hits the last one)."""
        period = self.period
        if period is None or not self.start_us <= us < self.end_us:
            period = self.period = period_at(self.board, instant_of(us))
            self.start_us = micros(period.starts_at)
            self.end_us = micros(period.ends_at) if period.ends_at else _NEVER
        return period

    def tie_break(self, us: int) -> int:
        """SortKeyCodec.tie_break of the whole seconds since the start of the period last
        returned by period_at (call that first)."""
        elapsed = min(max((us - self.start_us) // 1_000_000, 0), self._top)
        return self._top - elapsed if self._flip else elapsed
