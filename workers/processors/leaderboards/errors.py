"""Errors of the leaderboards package, under the worker error tree."""

from __future__ import annotations

from workers.errors import PermanentError, WorkerError


class LeaderboardConfigError(PermanentError):
    """The definitions file (or a definition in it) is invalid; the worker refuses to start."""


class UnknownLeaderboardError(WorkerError):
    """A command or a read names a leaderboard id that the definitions do not have."""


class PeriodError(WorkerError):
    """A period key does not name a period of this leaderboard (wrong format or schedule)."""


class GroupPositionUnknownError(WorkerError):
    """The consumer group's committed offsets, or where its partitions stand, could not be read
    now; a period waiting for the group keeps waiting and the read is tried again later."""

    retriable = True
