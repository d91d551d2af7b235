"""Apply a batch of submissions in one Lua call (scoring.lua): dedup, operator, ranks, journal.

One round trip per batch, and atomic: each submission's dedup marker, sorted-set update,
rate-limit count and journal entry are written together or not at all, so a worker that dies
mid-batch leaves every submission either fully applied (marker `done`) or untouched.
Operators: best -> ZADD GT (higher is better) or LT (lower is better); latest -> plain ZADD;
increment/decrement -> read, add the signed delta, ZADD with the new tie-break (the time the
player reached the new total), refusing totals the sort value cannot hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from workers.errors import DependencyUnavailableError
from workers.processors.leaderboards import keys
from workers.processors.leaderboards.definitions import LeaderboardDefinition
from workers.processors.leaderboards.periods import LeaderboardPeriod
from workers.runtime.keys import DONE

_SCRIPT = resources.files(__package__).joinpath("scoring.lua").read_text(encoding="utf-8")
_OPS = {"best": None, "latest": "set", "increment": "add", "decrement": "add"}


class ScoreStatus(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    CLOSED = "closed"
    RATE_LIMITED = "rate_limited"
    OUT_OF_RANGE = "out_of_range"


@dataclass(frozen=True, slots=True)
class Submission:
    """A validated score submission, with the board and period it falls in."""

    idempotency_key: str
    event_id: str
    player_id: str
    board: LeaderboardDefinition
    period: LeaderboardPeriod
    score: int
    received_at: datetime

    @property
    def operand(self) -> int:
        """The value the script applies: the score, negated for a decrement board."""
        return -self.score if self.board.operator == "decrement" else self.score


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """What the script did with one submission; ranks are 1-based, None when unranked."""

    status: ScoreStatus
    old_rank: int | None = None
    new_rank: int | None = None
    sort_value: int | None = None
    #: Who was first before this submission, and their rank after it (None if it is the
    #: submitting player or the board was empty).
    leader_before: str | None = None
    leader_rank_after: int | None = None
    leader_sort_value: int | None = None


def _op(board: LeaderboardDefinition) -> str:
    return _OPS[board.operator] or ("gt" if board.better == "higher" else "lt")


def _expire_at(sub: Submission) -> int:
    if sub.period.ends_at is None:
        return 0
    return int(sub.period.ends_at.timestamp()) + sub.board.retention_s


def _rank(raw: Any) -> int | None:
    value = int(raw)
    return None if value < 0 else value + 1


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class ScoringScript:
    """The scoring script registered on one Redis client, for one key prefix."""

    def __init__(self, client: aioredis.Redis, *, prefix: str, dedup_ttl_s: int) -> None:
        self._prefix = prefix
        self._ttl_s = dedup_ttl_s
        self._script = client.register_script(_SCRIPT)

    def _keys_and_args(self, batch: Sequence[Submission]) -> tuple[list[str], list[Any]]:
        script_keys = [keys.journal_key(self._prefix)]
        args: list[Any] = [self._ttl_s, DONE]
        for sub in batch:
            board_id, period = sub.board.id, sub.period.key
            script_keys += [
                keys.dedup_key(self._prefix, sub.idempotency_key),
                keys.board_key(self._prefix, board_id, period),
                keys.submissions_key(self._prefix, board_id, period),
                keys.closed_key(self._prefix, board_id, period),
            ]
            codec = sub.board.codec
            args += [
                _op(sub.board),
                sub.operand,
                codec.tie_break(sub.period.elapsed_s(sub.received_at)),
                codec.multiplier,
                codec.score_limit,
                sub.board.max_submissions_per_period or 0,
                _expire_at(sub),
                "rev" if sub.board.better == "higher" else "fwd",
                sub.player_id,
                sub.idempotency_key,
                sub.event_id,
                board_id,
                period,
            ]
        return script_keys, args

    async def apply(self, batch: Sequence[Submission]) -> list[ScoreResult]:
        """One result per submission, in order. DependencyUnavailableError if Redis is down."""
        if not batch:
            return []
        script_keys, args = self._keys_and_args(batch)
        try:
            rows = await self._script(keys=script_keys, args=args)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise DependencyUnavailableError(f"redis: {exc}") from exc
        results = []
        for status, old_rank, new_rank, stored, leader, leader_rank, leader_value in rows:
            status_text = ScoreStatus(_text(status))
            if status_text is not ScoreStatus.APPLIED:
                results.append(ScoreResult(status_text))
                continue
            leader_id, leader_text = _text(leader), _text(leader_value)
            results.append(
                ScoreResult(
                    status_text,
                    old_rank=_rank(old_rank),
                    new_rank=_rank(new_rank),
                    sort_value=int(float(_text(stored))),
                    leader_before=leader_id or None,
                    leader_rank_after=_rank(leader_rank),
                    leader_sort_value=int(float(leader_text)) if leader_text else None,
                )
            )
        return results
