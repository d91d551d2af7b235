"""The leaderboards processor under fault: two boards of the test's own, and their exact scores.

Each test writes a definitions file with two boards named after it (MySQL's journal of accepted
submissions is keyed by board id, and the session's database is shared by every test):
- `<tag>-sum`, an `increment` board: a player's score is the exact sum of their accepted
  submissions, so one double apply or one loss changes it;
- `<tag>-best`, a `best` board (higher is better): the player's highest accepted submission.
Neither resets (one period, "all") nor limits submissions, so nothing depends on the clock. One
submission in twenty is out of range: refused, it must leave no row and no score.
The checker computes every final score from the plan, compares MySQL's journal (one row per
accepted submission) and the Redis boards with it, and can rebuild the boards from MySQL with
`rebuild_board` (what `liveops leaderboards rebuild` runs) to compare the result as well.
What the run publishes (rank changes, rejections) is checked by leaderboards_outputs.py, from
the ranks topic, where a test has the broker's settings.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, cast

import redis.asyncio as aioredis

from schemas.liveops.v1.envelope_pb2 import Envelope
from workers.db import MySQLTarget, create_pool
from workers.processors.leaderboards import keys
from workers.processors.leaderboards.definitions import Definitions, parse_definitions
from workers.processors.leaderboards.periods import period_at
from workers.processors.leaderboards.rebuild import rebuild_board

from .checker import StateReader, like_pattern, query, text_of
from .events import EventPlan, PayloadFiller

LEADERBOARDS: Final = "leaderboards"
PAYLOADS = frozenset({"score_submitted"})
#: Accepted range of each board; submissions outside it are refused.
SUM_RANGE = (1, 100)
BEST_RANGE = (0, 1_000_000)
OUT_OF_RANGE_SHARE = 0.05
PERIOD = "all"

#: board id -> player id -> score.
Scores = dict[str, dict[str, int]]


def definitions_toml(tag: str) -> str:
    return f"""
version = "fault-{tag}"

[[leaderboards]]
id = "{tag}-sum"
operator = "increment"
reset = "none"
min_score = {SUM_RANGE[0]}
max_score = {SUM_RANGE[1]}

[[leaderboards]]
id = "{tag}-best"
operator = "best"
better = "higher"
reset = "none"
min_score = {BEST_RANGE[0]}
max_score = {BEST_RANGE[1]}
"""


@dataclass(frozen=True)
class FaultBoards:
    """The test's two boards and how its plan submits to them."""

    tag: str

    @property
    def sum_board(self) -> str:
        return f"{self.tag}-sum"

    @property
    def best_board(self) -> str:
        return f"{self.tag}-best"

    @property
    def definitions(self) -> Definitions:
        return parse_definitions(definitions_toml(self.tag), source="fault test boards")

    def ranges(self) -> dict[str, tuple[int, int]]:
        return {self.sum_board: SUM_RANGE, self.best_board: BEST_RANGE}

    def filler(self) -> PayloadFiller:
        def fill(rng: random.Random, envelope: Envelope) -> None:
            board = rng.choice((self.sum_board, self.best_board))
            low, high = self.ranges()[board]
            score = rng.randint(low, high)
            if rng.random() < OUT_OF_RANGE_SHARE:
                score = rng.choice((low - 1 - rng.randrange(5), high + 1 + rng.randrange(5)))
            envelope.score_submitted.leaderboard_id = board
            envelope.score_submitted.score = score

        return fill

    def accepted(self, plan: EventPlan) -> dict[str, Envelope]:
        """The plan's submissions the boards accept (in range), by idempotency key."""
        ranges = self.ranges()
        return {
            key: source
            for key, source in plan.sources.items()
            if ranges[source.score_submitted.leaderboard_id][0]
            <= source.score_submitted.score
            <= ranges[source.score_submitted.leaderboard_id][1]
        }

    def expected_scores(self, plan: EventPlan) -> Scores:
        """Per board and player: the sum (increment board) or the maximum (best board)."""
        scores: Scores = {self.sum_board: defaultdict(int), self.best_board: {}}
        for source in self.accepted(plan).values():
            submitted = source.score_submitted
            board = scores[submitted.leaderboard_id]
            if submitted.leaderboard_id == self.sum_board:
                board[source.player_id] += submitted.score
            else:
                board[source.player_id] = max(
                    board.get(source.player_id, submitted.score), submitted.score
                )
        return {board: dict(by_player) for board, by_player in scores.items()}


class LeaderboardsReader:
    """The test's journal rows in MySQL and its boards in Redis (direct links, no proxy)."""

    name = LEADERBOARDS

    def __init__(
        self, target: MySQLTarget, redis_url: str, *, key_prefix: str, boards: FaultBoards
    ) -> None:
        self.target = target
        self.redis_url = redis_url
        self.key_prefix = key_prefix
        self.boards = boards
        self.like = like_pattern(key_prefix)
        self._leases = StateReader(
            target, redis_url, key_prefix=key_prefix, processor=LEADERBOARDS, ids=key_prefix
        )

    async def applied_count(self) -> int:
        """Accepted submissions recorded in MySQL so far."""
        rows = await asyncio.to_thread(
            query,
            self.target,
            "SELECT COUNT(*) FROM leaderboard_submissions WHERE idempotency_key LIKE %s",
            (self.like,),
        )
        return int(str(rows[0][0]))

    async def in_flight(self) -> int:
        """Leases, plus submissions applied in Redis whose journal entry is not in MySQL yet."""
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            journal = int(await client.xlen(keys.journal_key(self.key_prefix)))
        finally:
            await client.aclose()
        return journal + await self._leases.leased_count()

    async def journal(self) -> dict[str, tuple[str, str, str, int, str]]:
        """idempotency key -> (board, period, player, submitted, event id), from MySQL."""
        rows = await asyncio.to_thread(
            query,
            self.target,
            "SELECT idempotency_key, leaderboard_id, period, player_id, submitted, event_id "
            "FROM leaderboard_submissions WHERE idempotency_key LIKE %s",
            (self.like,),
        )
        return {
            str(key): (str(board), str(period), str(player), int(str(score)), str(event))
            for key, board, period, player, score, event in rows
        }

    async def board_scores(self) -> Scores:
        """Every player's score on each test board in Redis, decoded from its sort value."""
        definitions = self.boards.definitions
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            scores: Scores = {}
            for board in definitions:
                key = keys.board_key(self.key_prefix, board.id, PERIOD)
                entries = cast(
                    list[tuple[bytes, float]], await client.zrange(key, 0, -1, withscores=True)
                )
                scores[board.id] = {
                    text_of(player): board.codec.score_of(value) for player, value in entries
                }
            return scores
        finally:
            await client.aclose()

    async def problems(self, plan: EventPlan, *, redis_lost: bool = False) -> list[str]:
        """Differences of MySQL's journal and (unless Redis was lost) the boards from the plan."""
        problems = journal_discrepancies(plan, self.boards, await self.journal())
        if not redis_lost:
            problems += score_discrepancies(
                self.boards.expected_scores(plan), await self.board_scores(), "redis board"
            )
        return problems

    async def rebuild(self) -> Scores:
        """Rebuild both boards from MySQL as the CLI does; the scores they then hold."""
        pool = await create_pool(self.target, maxsize=2)
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            for board in self.boards.definitions:
                period = period_at(board, datetime.now(UTC))
                await rebuild_board(
                    client, pool, prefix=self.key_prefix, board=board, period=period
                )
        finally:
            await client.aclose()
            pool.close()
            await pool.wait_closed()
        return await self.board_scores()


def journal_discrepancies(
    plan: EventPlan, boards: FaultBoards, journal: Mapping[str, tuple[str, str, str, int, str]]
) -> list[str]:
    """One row per accepted submission, with its board, player and score; none for others."""
    accepted = boards.accepted(plan)
    problems: list[str] = []
    missing = sorted(set(accepted) - set(journal))
    unexpected = sorted(set(journal) - set(accepted))
    if missing:
        problems.append(f"{len(missing)} accepted submissions not in MySQL, e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} journal rows not accepted, e.g. {unexpected[:3]}")
    wrong = sorted(
        key
        for key, (board, period, player, score, event_id) in journal.items()
        if key in accepted
        and (
            (board, period, player, score)
            != (
                accepted[key].score_submitted.leaderboard_id,
                PERIOD,
                accepted[key].player_id,
                accepted[key].score_submitted.score,
            )
            or event_id not in plan.event_ids[key]
        )
    )
    if wrong:
        problems.append(f"{len(wrong)} journal rows with a wrong board, player, score or id")
    return problems


def score_discrepancies(expected: Scores, actual: Scores, where: str) -> list[str]:
    """Every player whose score differs, per board; empty when every board is exact."""
    differences: list[str] = []
    for board, wanted in sorted(expected.items()):
        have = actual.get(board, {})
        for player in sorted(set(wanted) | set(have)):
            if wanted.get(player) != have.get(player):
                differences.append(
                    f"{board} {player}: {have.get(player)}, expected {wanted.get(player)}"
                )
    if not differences:
        return []
    return [f"{len(differences)} {where} scores differ: " + "; ".join(differences[:8])]
