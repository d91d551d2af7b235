"""DedupMode.PROCESSOR: the scoring script alone guards every final event against a repeat."""

from __future__ import annotations

import asyncio

import aiomysql
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from workers.processors.leaderboards import keys
from workers.processors.leaderboards.definitions import Definitions
from workers.processors.leaderboards.periods import period_at
from workers.processors.leaderboards.processor import LeaderboardsProcessor
from workers.processors.leaderboards.store import count_submissions
from workers.runtime.keys import DONE
from workers.runtime.processor import DedupMode, OutcomeKind, dedup_mode_of

from .lb_helpers import NOW, ProcessorFactory, seconds_after, settled, submission

pytestmark = pytest.mark.integration


def test_leaderboards_declare_that_they_guard_themselves() -> None:
    assert LeaderboardsProcessor.dedup is DedupMode.PROCESSOR
    assert dedup_mode_of(LeaderboardsProcessor) is DedupMode.PROCESSOR  # type: ignore[arg-type]  # the class carries the ClassVar


async def test_a_redelivered_refusal_is_a_duplicate_counted_once(
    make_processor: ProcessorFactory,
    redis_client: aioredis.Redis,
    unique_name: str,
    board_prefix: str,
) -> None:
    registry = CollectorRegistry()
    processor = make_processor(registry=registry)
    arena = f"{board_prefix}-arena"
    # Given refusals of both kinds: one before scoring (unknown board, score out of range),
    # one by the script (the rate limit: five per player and period on the arena)
    batch = [submission(arena, "ann", 10 + i, seconds_after(NOW, i)) for i in range(6)]
    batch += [submission("no-such-board", "ann", 1, NOW), submission(arena, "bob", 1_000_001, NOW)]
    first = await processor.handle(batch)
    assert [o.kind for o in first[5:]] == [OutcomeKind.REJECTED] * 3

    # When the whole batch is delivered again
    again = await processor.handle(batch)

    # Then every event is a duplicate, refusals included, and no refusal is counted twice
    assert [o.kind for o in again] == [OutcomeKind.DUPLICATE] * len(batch)
    for envelope in batch:
        marker = await redis_client.get(keys.dedup_key(unique_name, envelope.idempotency_key))
        assert marker == DONE.encode()
    unknown = registry.get_sample_value(
        "liveops_leaderboard_rejections_total",
        {"leaderboard": "unknown", "reason": "unknown_leaderboard"},
    )
    limited = registry.get_sample_value(
        "liveops_leaderboard_rejections_total", {"leaderboard": arena, "reason": "rate_limited"}
    )
    assert (unknown, limited) == (1.0, 1.0)


async def test_two_workers_with_the_same_events_apply_each_once(
    make_processor: ProcessorFactory,
    mysql_pool: aiomysql.Pool,
    definitions: Definitions,
    board_prefix: str,
) -> None:
    # Given two processors (two workers after a rebalance) handed the same 40 submissions
    points = f"{board_prefix}-points"
    batch = [submission(points, f"p{i % 5}", 1 + i, seconds_after(NOW, i)) for i in range(40)]
    one, other = make_processor(), make_processor()

    # When both handle them at the same time, with no runtime lease in front of them
    results = await asyncio.gather(settled(one, batch), settled(other, batch))

    # Then each event was applied by exactly one of them and is a duplicate for the other
    for mine, theirs in zip(*results, strict=True):
        assert sorted([mine.kind, theirs.kind]) == [OutcomeKind.APPLIED, OutcomeKind.DUPLICATE]
    board = definitions.get(points)
    assert board is not None
    assert await count_submissions(mysql_pool, points, period_at(board, NOW).key) == len(batch)
