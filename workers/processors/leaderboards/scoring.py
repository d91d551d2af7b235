"""Apply a batch of submissions in one Lua call (scoring.lua): dedup, operator, ranks, journal.

One round trip per batch, and atomic: each submission's dedup marker, sorted-set update,
rate-limit count and journal entry are written together or not at all, so a worker that dies
mid-batch leaves every submission either fully applied (marker `done`) or untouched.
Operators: best -> ZADD GT (higher is better) or LT (lower is better); latest -> plain ZADD;
increment/decrement -> read, add the signed delta, ZADD with the new tie-break (the time the
player reached the new total), refusing totals the sort value cannot hold.
Every final decision (applied, or refused for any reason, including events the processor
refused before scoring) sets the event's dedup marker in the same call, and a marker already
`done` makes the event a duplicate: the processor guards itself (DedupMode.PROCESSOR), so
the runtime skips its own claim and marks.
"""

from __future__ import annotations

import json
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
    #: Refused before scoring by the processor; its dedup marker is now set.
    REFUSED = "refused"


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
    #: Who was first before this submission, and their rank after it, when the submitter took
    #: first place (None if they were first already, the board was empty, or they did not
    #: become first: only OVERTAKEN_FROM_FIRST needs it, so the script looks it up only then).
    leader_before: str | None = None
    leader_rank_after: int | None = None
    leader_sort_value: int | None = None
    #: The stream id of the journal entry ("<ms>-<seq>"): the order of application.
    journal_id: str | None = None


def _op(board: LeaderboardDefinition) -> str:
    return _OPS[board.operator] or ("gt" if board.better == "higher" else "lt")


def _expire_at(sub: Submission) -> int:
    if sub.period.ends_at is None:
        return 0
    return int(sub.period.ends_at.timestamp()) + sub.board.retention_s


def _rank(raw: Any) -> int | None:
    value = int(raw)
    return None if value < 0 else value + 1


class ScoringScript:
    """The scoring script registered on one Redis client, for one key prefix."""

    def __init__(self, client: aioredis.Redis, *, prefix: str, dedup_ttl_s: int) -> None:
        self._prefix = prefix
        self._ttl_s = dedup_ttl_s
        self._script = client.register_script(_SCRIPT)

    def _keys_and_args(
        self, batch: Sequence[Submission], refused: Sequence[str] = ()
    ) -> tuple[list[str], list[Any]]:
        specs: dict[tuple[str, str], int] = {}
        spec_keys: list[str] = []
        spec_args: list[Any] = []
        sub_keys: list[str] = []
        sub_args: list[Any] = []
        for sub in batch:
            board, period = sub.board, sub.period
            number = specs.get((board.id, period.key))
            if number is None:
                number = specs[(board.id, period.key)] = len(specs) + 1
                spec_keys += [
                    keys.board_key(self._prefix, board.id, period.key),
                    keys.submissions_key(self._prefix, board.id, period.key),
                    keys.closed_key(self._prefix, board.id, period.key),
                ]
                codec = board.codec
                spec_args += [
                    _op(board),
                    codec.multiplier,
                    codec.score_limit,
                    board.max_submissions_per_period or 0,
                    _expire_at(sub),
                    "rev" if board.better == "higher" else "fwd",
                    board.id,
                    period.key,
                ]
            sub_keys.append(keys.dedup_key(self._prefix, sub.idempotency_key))
            sub_args += [
                number,
                sub.operand,
                sub.board.codec.tie_break(period.elapsed_s(sub.received_at)),
                sub.player_id,
                sub.idempotency_key,
                sub.event_id,
            ]
        for idempotency_key in refused:  # spec 0: only the dedup marker is checked and set
            sub_keys.append(keys.dedup_key(self._prefix, idempotency_key))
            sub_args += [0, 0, 0, "", idempotency_key, ""]
        script_keys = [keys.journal_key(self._prefix), *spec_keys, *sub_keys]
        return script_keys, [self._ttl_s, DONE, len(specs), *spec_args, *sub_args]

    async def apply(
        self, batch: Sequence[Submission], refused: Sequence[str] = ()
    ) -> list[ScoreResult]:
        """One result per submission, in order, then one per `refused` idempotency key (events
        refused before scoring: DUPLICATE if their marker was already done, else REFUSED, and
        the marker is set). DependencyUnavailableError if Redis is down."""
        if not batch and not refused:
            return []
        script_keys, args = self._keys_and_args(batch, refused)
        try:
            raw = await self._script(keys=script_keys, args=args)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise DependencyUnavailableError(f"redis: {exc}") from exc
        results = []
        for row in json.loads(raw):
            status = ScoreStatus(row[0])
            if status is not ScoreStatus.APPLIED:
                results.append(ScoreResult(status))
                continue
            _, old_rank, new_rank, stored, leader, leader_rank, leader_value, journal_id = row
            results.append(
                ScoreResult(
                    status,
                    old_rank=_rank(old_rank),
                    new_rank=_rank(new_rank),
                    sort_value=int(float(stored)),
                    leader_before=leader or None,
                    leader_rank_after=_rank(leader_rank),
                    leader_sort_value=int(float(leader_value)) if leader_value else None,
                    journal_id=journal_id,
                )
            )
        return results
