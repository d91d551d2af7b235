"""Rank queries: top N with pagination, one player, the players around one, a friends view.

Reads never block scoring: each is one pipelined round trip of plain sorted-set reads
(ZRANGE/ZRANK/ZMSCORE, O(log N + page)), never a Lua script, a lock or a transaction, so Redis
interleaves them with the scoring script between calls. Every answer names the period it
comes from and when that period resets (None: never), so a client can show a countdown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from workers.processors.leaderboards import keys
from workers.processors.leaderboards.definitions import LeaderboardDefinition
from workers.processors.leaderboards.periods import LeaderboardPeriod


@dataclass(frozen=True, slots=True)
class RankedEntry:
    rank: int
    player_id: str
    score: int


@dataclass(frozen=True, slots=True)
class BoardView:
    """A slice of one period of one board."""

    leaderboard_id: str
    period: str
    resets_at: datetime | None
    total_players: int
    entries: tuple[RankedEntry, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "leaderboard_id": self.leaderboard_id,
            "period": self.period,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
            "total_players": self.total_players,
            "entries": [
                {"rank": e.rank, "player_id": e.player_id, "score": e.score} for e in self.entries
            ],
        }


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _view(
    board: LeaderboardDefinition,
    period: LeaderboardPeriod,
    total: int,
    entries: Sequence[RankedEntry],
) -> BoardView:
    return BoardView(board.id, period.key, period.ends_at, int(total), tuple(entries))


def _range_cmd(pipe: Any, board: LeaderboardDefinition, key: str, start: int, stop: int) -> None:
    if board.better == "higher":
        pipe.zrevrange(key, start, stop, withscores=True)
    else:
        pipe.zrange(key, start, stop, withscores=True)


def _rank_cmd(pipe: Any, board: LeaderboardDefinition, key: str, player_id: str) -> None:
    if board.better == "higher":
        pipe.zrevrank(key, player_id)
    else:
        pipe.zrank(key, player_id)


def _entries(board: LeaderboardDefinition, first_rank: int, rows: Any) -> list[RankedEntry]:
    codec = board.codec
    return [
        RankedEntry(first_rank + i, _text(member), codec.score_of(value))
        for i, (member, value) in enumerate(rows)
    ]


async def read_top(
    client: aioredis.Redis,
    *,
    prefix: str,
    board: LeaderboardDefinition,
    period: LeaderboardPeriod,
    offset: int = 0,
    limit: int = 10,
) -> BoardView:
    """Ranks offset+1 .. offset+limit."""
    key = keys.board_key(prefix, board.id, period.key)
    pipe = client.pipeline(transaction=False)
    pipe.zcard(key)
    _range_cmd(pipe, board, key, offset, offset + limit - 1)
    total, rows = await pipe.execute()
    return _view(board, period, total, _entries(board, offset + 1, rows))


async def read_player(
    client: aioredis.Redis,
    *,
    prefix: str,
    board: LeaderboardDefinition,
    period: LeaderboardPeriod,
    player_id: str,
) -> BoardView:
    """The player's rank and score: one entry, or none when the player has no score."""
    return await read_friends(
        client, prefix=prefix, board=board, period=period, player_ids=[player_id]
    )


async def read_around(
    client: aioredis.Redis,
    *,
    prefix: str,
    board: LeaderboardDefinition,
    period: LeaderboardPeriod,
    player_id: str,
    radius: int = 5,
) -> BoardView:
    """Up to `radius` players on each side of the player; no entries when unranked."""
    key = keys.board_key(prefix, board.id, period.key)
    pipe = client.pipeline(transaction=False)
    pipe.zcard(key)
    _rank_cmd(pipe, board, key, player_id)
    total, rank = await pipe.execute()
    if rank is None:
        return _view(board, period, total, [])
    start = max(int(rank) - radius, 0)
    pipe = client.pipeline(transaction=False)
    _range_cmd(pipe, board, key, start, int(rank) + radius)
    (rows,) = await pipe.execute()
    return _view(board, period, total, _entries(board, start + 1, rows))


async def read_friends(
    client: aioredis.Redis,
    *,
    prefix: str,
    board: LeaderboardDefinition,
    period: LeaderboardPeriod,
    player_ids: Sequence[str],
) -> BoardView:
    """The given players that have a score, best first, with their ranks on the whole board."""
    key = keys.board_key(prefix, board.id, period.key)
    unique = list(dict.fromkeys(player_ids))
    pipe = client.pipeline(transaction=False)
    pipe.zcard(key)
    for player_id in unique:
        _rank_cmd(pipe, board, key, player_id)
    if unique:
        pipe.zmscore(key, unique)
    total, *answers = await pipe.execute()
    if not unique:
        return _view(board, period, total, [])
    ranks, scores = answers[:-1], answers[-1]
    codec = board.codec
    entries = [
        RankedEntry(int(rank) + 1, player_id, codec.score_of(value))
        for player_id, rank, value in zip(unique, ranks, scores, strict=True)
        if rank is not None and value is not None
    ]
    return _view(board, period, total, sorted(entries, key=lambda e: e.rank))
