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
The caller publishes them, and once the broker acknowledged every one, sets the period's
`announced` marker (`mark_announced`): until then the period is announced again (same ids).
Who closes: the processor does it lazily (lazyclose.py: which periods, and when), and
`liveops leaderboards close ID --period P` does it on demand; both run this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import aiomysql
import redis.asyncio as aioredis

from workers.errors import TransientError
from workers.processors.leaderboards import events, keys, store
from workers.processors.leaderboards.definitions import LeaderboardDefinition
from workers.processors.leaderboards.due import period_end
from workers.processors.leaderboards.periods import LeaderboardPeriod
from workers.processors.leaderboards.rebuild import rebuild_board
from workers.runtime.processor import OutputEvent

_LOCK_TTL_S = 120


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


def _expire_at(board: LeaderboardDefinition, period: LeaderboardPeriod) -> int | None:
    """When a finished period's keys expire: its end plus the board's retention."""
    end = period_end(board, period)
    return None if end is None else int(end.timestamp()) + board.retention_s


async def mark_announced(
    client: aioredis.Redis, prefix: str, board: LeaderboardDefinition, period: LeaderboardPeriod
) -> None:
    """Record that the broker acknowledged every prize of the period (kept as long as its keys)."""
    marker = keys.announced_key(prefix, board.id, period.key)
    expire_at = _expire_at(board, period)
    if expire_at is None:
        await client.set(marker, "1")
    else:
        await client.set(marker, "1", exat=expire_at)


async def is_announced(
    client: aioredis.Redis, prefix: str, board: LeaderboardDefinition, period: LeaderboardPeriod
) -> bool:
    return bool(await client.exists(keys.announced_key(prefix, board.id, period.key)))


async def waiting_since(
    client: aioredis.Redis,
    prefix: str,
    board: LeaderboardDefinition,
    period: LeaderboardPeriod,
    now: datetime,
) -> datetime:
    """When a worker first found the period due: `now` unless one recorded an earlier time
    (kept as long as the period's keys), so a restart does not start the wait again."""
    key = keys.waiting_key(prefix, board.id, period.key)
    expire_at = _expire_at(board, period)
    seconds = int(now.timestamp())
    if expire_at is None:
        await client.set(key, seconds, nx=True)
    else:
        await client.set(key, seconds, nx=True, exat=max(expire_at, seconds + 1))
    recorded = await client.get(key)
    if recorded is None:  # expired in between: only at the end of the retention
        return now
    return min(now, datetime.fromtimestamp(int(recorded), tz=UTC))


@dataclass(frozen=True, slots=True)
class PeriodState:
    """What the lazy closer needs to know of a finished period it may have missed."""

    announced: bool
    archived: bool
    #: Submissions in MySQL or a sorted set in Redis (else there is nothing to archive).
    active: bool


class PeriodStore(Protocol):
    """The periods as the lazy closer sees them: StoredPeriods, or a fake in unit tests."""

    async def state(self, board: LeaderboardDefinition, period: LeaderboardPeriod) -> PeriodState:
        """Whether it was announced, archived, and has anything to archive."""

    async def close(
        self, board: LeaderboardDefinition, period: LeaderboardPeriod, now: datetime
    ) -> ClosedPeriod:
        """closing.close_period: archive (or find archived) and return the prize events."""

    async def is_announced(self, board: LeaderboardDefinition, period: LeaderboardPeriod) -> bool:
        """Whether someone (another worker, the CLI) announced it since."""

    async def mark_announced(self, board: LeaderboardDefinition, period: LeaderboardPeriod) -> None:
        """Record that the broker acknowledged every prize of the period."""

    async def waiting_since(
        self, board: LeaderboardDefinition, period: LeaderboardPeriod, now: datetime
    ) -> datetime:
        """When any worker first found the period due (`now` when none did before)."""


class StoredPeriods:
    """The periods as Redis and MySQL hold them: what the lazy closer reads and changes."""

    def __init__(
        self, client: aioredis.Redis, pool: aiomysql.Pool, *, prefix: str, definitions_version: str
    ) -> None:
        self._client = client
        self._pool = pool
        self._prefix = prefix
        self._version = definitions_version

    async def state(self, board: LeaderboardDefinition, period: LeaderboardPeriod) -> PeriodState:
        """Cheapest first: a period announced (or archived) needs no count of its rows."""
        if await self.is_announced(board, period):
            return PeriodState(announced=True, archived=True, active=True)
        if await store.is_archived(self._pool, board.id, period.key):
            return PeriodState(announced=False, archived=True, active=True)
        live = keys.board_key(self._prefix, board.id, period.key)
        active = bool(await self._client.exists(live)) or bool(
            await store.count_submissions(self._pool, board.id, period.key)
        )
        return PeriodState(announced=False, archived=False, active=active)

    async def close(
        self, board: LeaderboardDefinition, period: LeaderboardPeriod, now: datetime
    ) -> ClosedPeriod:
        return await close_period(
            self._client,
            self._pool,
            prefix=self._prefix,
            board=board,
            period=period,
            definitions_version=self._version,
            now=now,
        )

    async def is_announced(self, board: LeaderboardDefinition, period: LeaderboardPeriod) -> bool:
        return await is_announced(self._client, self._prefix, board, period)

    async def mark_announced(self, board: LeaderboardDefinition, period: LeaderboardPeriod) -> None:
        await mark_announced(self._client, self._prefix, board, period)

    async def waiting_since(
        self, board: LeaderboardDefinition, period: LeaderboardPeriod, now: datetime
    ) -> datetime:
        return await waiting_since(self._client, self._prefix, board, period, now)
