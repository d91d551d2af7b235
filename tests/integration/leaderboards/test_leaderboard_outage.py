"""MySQL cannot take the record after Redis applied a batch: nothing is lost."""

from __future__ import annotations

from typing import Any

import aiomysql
import pymysql
import pytest
import redis.asyncio as aioredis

from workers.db import MySQLTarget, create_pool
from workers.errors import DependencyUnavailableError
from workers.processors.leaderboards import keys
from workers.processors.leaderboards.store import count_submissions
from workers.runtime.processor import OutcomeKind

from .lb_helpers import (
    NOW,
    ProcessorFactory,
    journaled,
    seconds_after,
    settled,
    submission,
)

pytestmark = pytest.mark.integration


async def short_lock_waits(pool: aiomysql.Pool) -> None:
    """Make the pool's one connection give up on a lock after 1 s instead of 50."""
    async with pool.acquire() as conn, conn.cursor() as cursor:
        await cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
        await conn.commit()


def hold_row_lock(target: MySQLTarget, idempotency_key: str) -> pymysql.Connection[Any]:
    """Another session inserts the same submission and keeps its transaction open."""
    other = pymysql.connect(
        host=target.host, port=target.port, user=target.user, database=target.database
    )
    with other.cursor() as cursor:
        cursor.execute(
            "INSERT INTO leaderboard_submissions (idempotency_key, event_id, leaderboard_id, "
            "period, player_id, submitted, sort_value, journal_ms, journal_seq) "
            "VALUES (%s, 'other', 'other', 'other', 'other', 0, 0, 0, 0)",
            (idempotency_key,),
        )
    return other


async def test_a_lost_mysql_connection_holds_the_batch_and_the_journal_catches_up(
    make_processor: ProcessorFactory,
    redis_client: aioredis.Redis,
    mysql_target: MySQLTarget,
    unique_name: str,
    board_prefix: str,
) -> None:
    arena = f"{board_prefix}-arena"
    pool = await create_pool(mysql_target, maxsize=1)
    try:
        processor = make_processor(mysql=pool)
        first = [submission(arena, f"p{i}", 10 * i, seconds_after(NOW, i)) for i in range(4)]
        # Given MySQL cannot take the record now (a lock held elsewhere, until a timeout),
        await short_lock_waits(pool)
        other = hold_row_lock(mysql_target, first[0].idempotency_key)
        try:
            # when a batch is handled, the runtime is told it cannot commit the batch now,
            await processor.handle(first)
            with pytest.raises(DependencyUnavailableError, match="mysql"):
                await processor.before_commit()
        finally:
            other.rollback()
            other.close()
        # while Redis applied it and kept every submission in the journal.
        assert await redis_client.zcard(keys.board_key(unique_name, arena, "2026-W48")) == 4
        assert await journaled(redis_client, unique_name) == 4
        assert await count_submissions(pool, arena, "2026-W48") == 0

        # When the batch comes again (MySQL free), it is all duplicates, and the journal,
        # copied with it, leaves nothing behind:
        again = await settled(processor, [*first, submission(arena, "p9", 5, NOW)])
        assert [o.kind for o in again] == [OutcomeKind.DUPLICATE] * 4 + [OutcomeKind.APPLIED]
        assert await count_submissions(pool, arena, "2026-W48") == 5
        assert await journaled(redis_client, unique_name) == 0
    finally:
        pool.close()
        await pool.wait_closed()


async def test_over_long_ids_fail_alone_instead_of_blocking_the_journal(
    make_processor: ProcessorFactory, board_prefix: str
) -> None:
    arena = f"{board_prefix}-arena"
    outcomes = await make_processor().handle(
        [submission(arena, "x" * 129, 1, NOW), submission(arena, "ok", 1, NOW)]
    )
    assert [o.kind for o in outcomes] == [OutcomeKind.FAILED, OutcomeKind.APPLIED]
    assert "player_id" in outcomes[0].reason
