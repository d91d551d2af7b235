"""Rebuild a board's sorted set (and its rate-limit counters) from MySQL after Redis lost it.

Every accepted submission is in `leaderboard_submissions`; replaying them in application order
with the board's operator gives each player's standing and tie-break second (store.final_entries),
even when Redis lost the board mid-run and later submissions were applied to an emptied board.
The rebuild fills scratch keys and swaps them in with RENAME,
so readers see the old board or the new one, never a half-filled one.

Stop the leaderboards workers (or at least make sure no submission to this board is applied)
while rebuilding: a submission applied between the MySQL read and the swap is in MySQL but is
overwritten in Redis until the next rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiomysql
import redis.asyncio as aioredis

from workers.processors.leaderboards import keys
from workers.processors.leaderboards.definitions import LeaderboardDefinition
from workers.processors.leaderboards.journal import flush_journal
from workers.processors.leaderboards.periods import LeaderboardPeriod
from workers.processors.leaderboards.store import final_entries


@dataclass(frozen=True, slots=True)
class RebuildReport:
    leaderboard_id: str
    period: str
    players: int


async def rebuild_board(
    client: aioredis.Redis,
    pool: aiomysql.Pool,
    *,
    prefix: str,
    board: LeaderboardDefinition,
    period: LeaderboardPeriod,
) -> RebuildReport:
    """Replace the board's sorted set for `period` with the one MySQL implies."""
    # Whatever Redis still has journaled must reach MySQL first, or the rebuild would drop it.
    await flush_journal(client, pool, prefix=prefix)
    live = keys.board_key(prefix, board.id, period.key)
    live_subs = keys.submissions_key(prefix, board.id, period.key)
    scratch = keys.rebuild_key(prefix, board.id, period.key)
    scratch_subs = f"{scratch}:subs"
    await client.delete(scratch, scratch_subs)
    players = 0
    async for chunk in final_entries(pool, board, period.key):
        pipe = client.pipeline(transaction=False)
        pipe.zadd(scratch, {entry.player_id: entry.sort_value for entry in chunk})
        if board.max_submissions_per_period:
            pipe.hset(scratch_subs, mapping={e.player_id: e.submissions for e in chunk})
        await pipe.execute()
        players += len(chunk)
    pipe = client.pipeline(transaction=True)
    if players:
        pipe.rename(scratch, live)
    else:
        pipe.delete(live)
    if players and board.max_submissions_per_period:
        pipe.rename(scratch_subs, live_subs)
    else:
        pipe.delete(live_subs)
    if period.ends_at is not None:
        expire_at = int(period.ends_at.timestamp()) + board.retention_s
        pipe.expireat(live, expire_at)
        pipe.expireat(live_subs, expire_at)
    await pipe.execute()
    return RebuildReport(board.id, period.key, players)
