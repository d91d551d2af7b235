"""Close a finished period: freeze it, archive its top entries with final ranks, announce prizes.

Steps, in order:
1. Take the closing lock (SET NX), so one worker or command closes a period at a time.
2. Set the period's `closed` marker: from then on the scoring script rejects submissions to it
   (reason closed), so the ranks read next are final.
3. If Redis lost the board but MySQL has its submissions, rebuild it first (rebuild.py).
4. Read the top `archive_top_n` and write them, with the period row, in one MySQL transaction.
   A period archived before keeps its first archive (a re-close changes no final rank).
5. Let the sorted set expire after the board's retention.
6. Return one SeasonPrizeAwarded per archived entry (when the board awards prizes), with ids
   derived from board, period and player: closing or announcing again yields the same ids.
Who closes: the processor does it lazily (after `close_grace_s` past the period end, on the
next batch), and `liveops leaderboards close ID --period P` does it on demand; both run this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiomysql
import pymysql
import redis.asyncio as aioredis
import redis.exceptions
import structlog
from prometheus_client import Counter

from workers.errors import TransientError, WorkerError
from workers.processors.leaderboards import events, keys, store
from workers.processors.leaderboards.definitions import Definitions, LeaderboardDefinition
from workers.processors.leaderboards.periods import (
    LeaderboardPeriod,
    period_at,
    previous_period,
)
from workers.processors.leaderboards.rebuild import rebuild_board
from workers.runtime.processor import OutputEvent

_LOCK_TTL_S = 120
log = structlog.get_logger(__name__)


class PeriodStillOpenError(TransientError):
    """The period has not ended yet; it can be closed once it has (or forced)."""


@dataclass(frozen=True, slots=True)
class ClosedPeriod:
    leaderboard_id: str
    period: str
    #: False when the period was archived before this call (outputs are re-announcements).
    newly_closed: bool
    entries: tuple[store.ArchivedEntry, ...]
    outputs: tuple[OutputEvent, ...]


def period_end(board: LeaderboardDefinition, period: LeaderboardPeriod) -> datetime | None:
    """When the period stops taking submissions: its reset, or the board's end if sooner."""
    ends = [t for t in (period.ends_at, board.ends_at) if t is not None]
    return min(ends) if ends else None


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
    if candidate is None or (
        board.starts_at and candidate.ends_at and candidate.ends_at <= board.starts_at
    ):
        return None
    return candidate


def _prizes(
    board: LeaderboardDefinition,
    period: LeaderboardPeriod,
    entries: tuple[store.ArchivedEntry, ...],
) -> tuple[OutputEvent, ...]:
    end = period_end(board, period) or period.starts_at
    if not board.award_prizes:
        return ()
    return tuple(
        events.prize_awarded(
            closed_at=end,
            leaderboard_id=board.id,
            period=period.key,
            player_id=entry.player_id,
            rank=entry.final_rank,
        )
        for entry in entries
    )


async def _top_entries(
    client: aioredis.Redis, live: str, board: LeaderboardDefinition
) -> list[store.ArchivedEntry]:
    if not board.archive_top_n:
        return []
    rows: Any = await client.zrange(
        live, 0, board.archive_top_n - 1, desc=board.better == "higher", withscores=True
    )
    codec = board.codec
    return [
        store.ArchivedEntry(
            rank,
            member.decode() if isinstance(member, bytes) else str(member),
            codec.score_of(value),
            int(value),
        )
        for rank, (member, value) in enumerate(rows, start=1)
    ]


async def close_period(
    client: aioredis.Redis,
    pool: aiomysql.Pool,
    *,
    prefix: str,
    board: LeaderboardDefinition,
    period: LeaderboardPeriod,
    definitions_version: str,
    now: datetime,
    force: bool = False,
) -> ClosedPeriod:
    """Run the steps of the module docstring; see there.

    PeriodStillOpenError when the period has not ended, has not been archived before, and
    `force` is not set. A period archived before is announced again, whatever the time.
    """
    end = period_end(board, period)
    still_open = not force and (end is None or now < end)
    lock = keys.closing_lock_key(prefix, board.id, period.key)
    if not await client.set(lock, "1", nx=True, ex=_LOCK_TTL_S):
        raise TransientError(f"{board.id} {period.key} is being closed by someone else")
    try:
        return await _close_locked(
            client, pool, prefix, board, period, definitions_version, still_open=still_open
        )
    finally:
        await client.delete(lock)


async def _close_locked(
    client: aioredis.Redis,
    pool: aiomysql.Pool,
    prefix: str,
    board: LeaderboardDefinition,
    period: LeaderboardPeriod,
    definitions_version: str,
    *,
    still_open: bool,
) -> ClosedPeriod:
    live = keys.board_key(prefix, board.id, period.key)
    closed = keys.closed_key(prefix, board.id, period.key)
    archived = await store.archived_entries(pool, board.id, period.key)
    if archived is None and still_open:
        raise PeriodStillOpenError(f"{board.id} {period.key} is still open (use force)")
    await client.set(closed, "1")
    if period.ends_at is not None:
        await client.expireat(closed, int(period.ends_at.timestamp()) + board.retention_s)
    newly = archived is None
    if archived is None:
        if not await client.exists(live) and await store.count_submissions(
            pool, board.id, period.key
        ):
            await rebuild_board(client, pool, prefix=prefix, board=board, period=period)
        candidates = await _top_entries(client, live, board)
        newly = await store.archive_period(
            pool,
            leaderboard_id=board.id,
            period=period.key,
            starts_at=period.starts_at,
            ends_at=period.ends_at,
            definitions_version=definitions_version,
            entries=candidates,
        )
        archived = await store.archived_entries(pool, board.id, period.key) or []
    if period.ends_at is not None:
        await client.expireat(live, int(period.ends_at.timestamp()) + board.retention_s)
    entries = tuple(archived)
    return ClosedPeriod(board.id, period.key, newly, entries, _prizes(board, period, entries))


class LazyCloser:
    """The processor's side of closing: after each batch, close what is due, once per process.

    A period already closed when this process first looks at it is announced again (same
    ids): if the worker died before its prizes were published, this is how they still get out.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        pool: aiomysql.Pool,
        *,
        prefix: str,
        definitions: Definitions,
        grace_s: int,
        closed_total: Counter,
    ) -> None:
        self._client = client
        self._pool = pool
        self._prefix = prefix
        self._definitions = definitions
        self._grace_s = grace_s
        self._closed_total = closed_total
        #: (board, period) of the periods this process closed or announced.
        self._announced: set[tuple[str, str]] = set()

    async def due_prizes(self, now: datetime) -> list[OutputEvent]:
        """Close every due period not seen yet; the prize events of all of them."""
        prizes: list[OutputEvent] = []
        for board in self._definitions:
            period = due_period(board, now, self._grace_s)
            if period is None or (board.id, period.key) in self._announced:
                continue
            try:
                closed = await close_period(
                    self._client,
                    self._pool,
                    prefix=self._prefix,
                    board=board,
                    period=period,
                    definitions_version=self._definitions.version,
                    now=now,
                )
            except TransientError:
                continue  # another worker is closing it; it announces the prizes
            except (WorkerError, redis.exceptions.RedisError, pymysql.err.Error, OSError) as exc:
                # The batch's scores are applied and durable: a failed close must not fail
                # (and dead-letter) them. The next batch tries again.
                log.warning(
                    "leaderboard period close failed",
                    leaderboard=board.id,
                    period=period.key,
                    error=str(exc),
                )
                continue
            self._announced.add((board.id, period.key))
            if closed.newly_closed:
                self._closed_total.labels(board.id).inc()
            prizes += closed.outputs
        return prizes
