"""Reset: the finished period is closed, archived with final ranks, and its prizes announced."""

from __future__ import annotations

from datetime import UTC, datetime

import aiomysql
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from topics.settings import KafkaSettings
from workers.processors.leaderboards import closing, keys, store
from workers.processors.leaderboards.definitions import Definitions
from workers.processors.leaderboards.events import season_id
from workers.processors.leaderboards.periods import period_at, period_named, previous_period
from workers.processors.leaderboards.settings import LeaderboardSettings
from workers.runtime.processor import OutcomeKind

from .lb_helpers import (
    NOW,
    Clock,
    ProcessorFactory,
    prizes_of,
    ranked,
    seconds_after,
    settled,
    started,
    submission,
)

pytestmark = pytest.mark.integration
AFTER_RESET = datetime(2026, 11, 30, 0, 5, tzinfo=UTC)  # five minutes into 2026-W49
#: The group check is tested in test_leaderboard_lazy_close.py; here the grace alone counts.
LAZY = LeaderboardSettings(close_lazily=True, close_grace_s=60, close_wait_for_group=False)


async def test_a_finished_week_is_archived_and_its_prizes_announced_once_per_id(
    make_processor: ProcessorFactory,
    kafka_settings: KafkaSettings,
    redis_client: aioredis.Redis,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
    definitions: Definitions,
    board_prefix: str,
    clock: Clock,
) -> None:
    arena = f"{board_prefix}-arena"
    registry = CollectorRegistry()
    processor = make_processor(settings=LAZY, kafka=kafka_settings, registry=registry)
    async with started(processor):
        # Given four scores in week 48:
        week48 = [("ann", 100), ("bob", 300), ("cid", 200), ("dan", 50)]
        await processor.handle(
            [submission(arena, p, s, seconds_after(NOW, i)) for i, (p, s) in enumerate(week48)]
        )
        # When the first batch after the reset (and the grace) arrives, with a submission
        # received just before the reset that was still queued:
        clock.now = AFTER_RESET
        late = submission(arena, "fay", 250, datetime(2026, 11, 29, 23, 59, 59, tzinfo=UTC))
        fresh = submission(arena, "eve", 10, AFTER_RESET)
        outcomes = await processor.handle([late, fresh])
        # and, later, one more submission to the closed week:
        later = submission(arena, "gus", 999, datetime(2026, 11, 29, 23, 0, tzinfo=UTC))
        (rejected,) = await processor.handle([later])

    # Then both are applied, each in its own week, and week 48 is archived with the late one.
    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED, OutcomeKind.APPLIED]
    archive = await store.archived_entries(mysql_pool, arena, "2026-W48")
    assert archive is not None
    assert [(e.final_rank, e.player_id, e.score) for e in archive] == [
        (1, "bob", 300),
        (2, "fay", 250),
        (3, "cid", 200),
    ]
    # The closer published the prizes itself (none ride on the batch's outcomes), for the
    # rewards processor, and marked the week announced once the broker acknowledged them.
    assert not any(o.envelope.HasField("season_prize_awarded") for o in outcomes[0].outputs)
    prizes = await prizes_of(kafka_settings, season_id(arena, "2026-W48"), 3)
    assert ranked(prizes) == [("bob", 1), ("fay", 2), ("cid", 3)]
    assert registry.get_sample_value(
        "liveops_leaderboard_prizes_published_total", {"leaderboard": arena}
    ) == len(prizes)
    assert await redis_client.exists(keys.announced_key(unique_name, arena, "2026-W48"))
    # Boards that award no prizes are archived but announce nothing (speed, daily).
    assert await store.archived_entries(mysql_pool, f"{board_prefix}-speed", "2026-11-29") == []

    # The one arriving later is rejected, never applied.
    assert (rejected.kind, rejected.reason) == (OutcomeKind.REJECTED, "closed")
    assert await redis_client.zscore(keys.board_key(unique_name, arena, "2026-W48"), "gus") is None

    # Closing again (the CLI) announces the same ids; the archive stands.
    board = definitions.get(arena)
    assert board is not None
    again = await closing.close_period(
        redis_client,
        mysql_pool,
        prefix=unique_name,
        board=board,
        period=period_named(board, "2026-W48"),
        definitions_version="other",
        now=AFTER_RESET,
    )
    assert not again.newly_closed
    assert sorted(o.envelope.event_id for o in again.outputs) == sorted(e.event_id for e in prizes)
    # A restarted worker finds the week announced and publishes nothing again.
    restarted_registry = CollectorRegistry()
    restarted = make_processor(settings=LAZY, kafka=kafka_settings, registry=restarted_registry)
    async with started(restarted):
        await restarted.handle([submission(arena, "hal", 1, AFTER_RESET)])
    assert not restarted_registry.get_sample_value(
        "liveops_leaderboard_prizes_published_total", {"leaderboard": arena}
    )


async def test_an_open_period_is_not_closed_unless_forced(
    redis_client: aioredis.Redis,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
    definitions: Definitions,
    board_prefix: str,
) -> None:
    board = definitions.get(f"{board_prefix}-arena")
    assert board is not None
    period = period_named(board, "2026-W48")
    with pytest.raises(closing.PeriodStillOpenError):
        await closing.close_period(
            redis_client,
            mysql_pool,
            prefix=unique_name,
            board=board,
            period=period,
            definitions_version="t",
            now=NOW,
        )
    forced = await closing.close_period(
        redis_client,
        mysql_pool,
        prefix=unique_name,
        board=board,
        period=period,
        definitions_version="t",
        now=NOW,
        force=True,
    )
    assert forced.newly_closed and forced.entries == ()


async def test_a_past_weeks_keys_expire_its_retention_after_its_end(
    make_processor: ProcessorFactory,
    redis_client: aioredis.Redis,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
    definitions: Definitions,
    board_prefix: str,
) -> None:
    # Given a late submission to last week (the real one: the expiry must lie ahead),
    arena = f"{board_prefix}-arena"
    board = definitions.get(arena)
    assert board is not None
    now = datetime.now(UTC)
    week = previous_period(board, period_at(board, now))
    assert week.ends_at is not None
    await settled(make_processor(), [submission(arena, "ann", 10, week.starts_at)])
    expire_at = int(week.ends_at.timestamp()) + board.retention_s  # its retention after its end

    # Then the scoring script set its board and rate-limit keys to expire then (EXPIREAT),
    live = keys.board_key(unique_name, arena, week.key)
    subs = keys.submissions_key(unique_name, arena, week.key)
    assert [await redis_client.expiretime(k) for k in (live, subs)] == [expire_at, expire_at]

    # and closing and announcing it give its markers the same end.
    await closing.close_period(
        redis_client,
        mysql_pool,
        prefix=unique_name,
        board=board,
        period=week,
        definitions_version="t",
        now=now,
    )
    await closing.mark_announced(redis_client, unique_name, board, week)
    markers = [
        keys.closed_key(unique_name, arena, week.key),
        keys.announced_key(unique_name, arena, week.key),
        live,
    ]
    assert [await redis_client.expiretime(k) for k in markers] == [expire_at] * 3


async def test_without_submissions_the_closers_own_tick_closes_and_pays_the_week(
    make_processor: ProcessorFactory,
    kafka_settings: KafkaSettings,
    redis_client: aioredis.Redis,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
    board_prefix: str,
    clock: Clock,
) -> None:
    arena = f"{board_prefix}-arena"
    ticking = LAZY.model_copy(update={"close_idle_check_s": 0.1})
    processor = make_processor(settings=ticking, kafka=kafka_settings)
    async with started(processor):
        # Given two scores in week 48,
        await settled(
            processor, [submission(arena, "ann", 100, NOW), submission(arena, "bob", 300, NOW)]
        )
        # When the week ends (and its grace passes) with no submission after it,
        clock.now = AFTER_RESET
        prizes = await prizes_of(kafka_settings, season_id(arena, "2026-W48"), 2)

    # Then the closer's own tick archived the week and published its prizes.
    assert ranked(prizes) == [("bob", 1), ("ann", 2)]
    archive = await store.archived_entries(mysql_pool, arena, "2026-W48")
    assert archive is not None and [e.player_id for e in archive] == ["bob", "ann"]
    assert await redis_client.exists(keys.announced_key(unique_name, arena, "2026-W48"))


async def test_the_wait_for_the_group_starts_when_the_first_worker_found_the_period_due(
    redis_client: aioredis.Redis, unique_name: str, definitions: Definitions, board_prefix: str
) -> None:
    board = definitions.get(f"{board_prefix}-arena")
    assert board is not None
    week48 = period_named(board, "2026-W48")
    first = await closing.waiting_since(redis_client, unique_name, board, week48, AFTER_RESET)
    later = AFTER_RESET.replace(hour=2)
    again = await closing.waiting_since(redis_client, unique_name, board, week48, later)
    assert first == again == AFTER_RESET
    # Kept as long as the week's other keys (its retention after its end).
    ttl = await redis_client.ttl(keys.waiting_key(unique_name, board.id, "2026-W48"))
    assert ttl > 0
