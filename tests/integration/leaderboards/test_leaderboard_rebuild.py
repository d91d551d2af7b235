"""Rebuild: after Redis loses the boards, MySQL alone restores them exactly."""

from __future__ import annotations

import random

import aiomysql
import pytest
import redis.asyncio as aioredis

from workers.processors.leaderboards import keys
from workers.processors.leaderboards.definitions import Definitions
from workers.processors.leaderboards.journal import flush_journal
from workers.processors.leaderboards.periods import period_at
from workers.processors.leaderboards.rebuild import rebuild_board
from workers.processors.leaderboards.store import count_submissions
from workers.runtime.processor import OutcomeKind

from .lb_helpers import NOW, ProcessorFactory, seconds_after, settled, submission

pytestmark = pytest.mark.integration


async def snapshot(client: aioredis.Redis, key: str) -> list[tuple[bytes, float]]:
    rows: list[tuple[bytes, float]] = await client.zrange(key, 0, -1, withscores=True)  # type: ignore[assignment]  # withscores=True returns pairs; redis-py's union type cannot say so
    return rows


async def test_rebuilt_boards_equal_the_originals(
    make_processor: ProcessorFactory,
    redis_client: aioredis.Redis,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
    definitions: Definitions,
    board_prefix: str,
) -> None:
    # Given 400 submissions (with redeliveries) from 30 players to four boards, many ties:
    rng = random.Random(4)
    ids = [f"{board_prefix}-{name}" for name in ("arena", "points", "trophies", "speed")]
    events = [
        submission(
            rng.choice(ids),
            f"p{rng.randrange(30):02d}",
            rng.randrange(1, 40) * 25,
            seconds_after(NOW, rng.randrange(3600)),
        )
        for _ in range(400)
    ]
    processor = make_processor()
    kinds: list[OutcomeKind] = []
    for start in range(0, len(events), 50):
        batch = events[start : start + 50] + rng.choices(events[: start + 1], k=3)
        kinds += [o.kind for o in await settled(processor, batch)]
    assert OutcomeKind.DUPLICATE in kinds and OutcomeKind.REJECTED in kinds  # rate limit hit
    originals = {}
    for board_id in ids:
        board = definitions.get(board_id)
        assert board is not None
        period = period_at(board, NOW)
        key = keys.board_key(unique_name, board_id, period.key)
        subs = keys.submissions_key(unique_name, board_id, period.key)
        originals[board_id] = (await snapshot(redis_client, key), await redis_client.hgetall(subs))
        assert originals[board_id][0], "every board got scores"

    # When Redis loses the boards and their counters, and each is rebuilt from MySQL:
    for board_id in ids:
        board = definitions.get(board_id)
        assert board is not None
        period = period_at(board, NOW)
        await redis_client.delete(
            keys.board_key(unique_name, board_id, period.key),
            keys.submissions_key(unique_name, board_id, period.key),
        )
        report = await rebuild_board(
            redis_client, mysql_pool, prefix=unique_name, board=board, period=period
        )
        key = keys.board_key(unique_name, board_id, period.key)
        subs = keys.submissions_key(unique_name, board_id, period.key)
        # Then members, sort values (hence ranks and tie-breaks) and counters are identical.
        assert await snapshot(redis_client, key) == originals[board_id][0]
        assert await redis_client.hgetall(subs) == originals[board_id][1]
        assert report.players == len(originals[board_id][0])
    applied = kinds.count(OutcomeKind.APPLIED)
    recorded = 0
    for board_id in ids:
        board = definitions.get(board_id)
        assert board is not None
        recorded += await count_submissions(mysql_pool, board_id, period_at(board, NOW).key)
    assert recorded == applied


async def test_the_journal_is_copied_once_and_emptied(
    make_processor: ProcessorFactory,
    redis_client: aioredis.Redis,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
    board_prefix: str,
) -> None:
    arena = f"{board_prefix}-arena"
    processor = make_processor()
    await settled(processor, [submission(arena, "ann", 5, NOW), submission(arena, "bob", 6, NOW)])
    # before_commit() copied already: the stream is empty and a flush copies nothing.
    assert await redis_client.xlen(keys.journal_key(unique_name)) == 0
    assert await flush_journal(redis_client, mysql_pool, prefix=unique_name) == 0
    assert await count_submissions(mysql_pool, arena, "2026-W48") == 2
