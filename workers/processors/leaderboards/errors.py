"""Errors of the leaderboards package, under the worker error tree."""

from __future__ import annotations

from workers.errors import PermanentError, WorkerError


class LeaderboardConfigError(PermanentError):
    """The definitions file (or a definition in it) is invalid; the worker refuses to start."""


class UnknownLeaderboardError(WorkerError):
    """A command or a read names a leaderboard id that the definitions do not have."""


class PeriodError(WorkerError):
    """A period key does not name a period of this leaderboard (wrong format or schedule)."""
