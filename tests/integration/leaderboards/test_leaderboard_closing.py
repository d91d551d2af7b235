"""Reset: the finished period is closed, archived with final ranks, and its prizes announced."""

from __future__ import annotations

from datetime import UTC, datetime

import aiomysql
import pytest
import redis.asyncio as aioredis

from workers.processors.leaderboards import closing, keys, store
from workers.processors.leaderboards.definitions import Definitions
from workers.processors.leaderboards.events import PRIZE_TOPIC, season_id
from workers.processors.leaderboards.periods import period_named
from workers.processors.leaderboards.settings import LeaderboardSettings
from workers.runtime.processor import OutcomeKind

from .lb_helpers import NOW, Clock, ProcessorFactory, seconds_after, submission

pytestmark = pytest.mark.integration
AFTER_RESET = datetime(2026, 11, 30, 0, 5, tzinfo=UTC)  # five minutes into 2026-W49
LAZY = LeaderboardSettings(close_lazily=True, close_grace_s=60)


async def test_a_finished_week_is_archived_and_its_prizes_announced_once_per_id(
    make_processor: ProcessorFactory,
    redis_client: aioredis.Redis,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
    definitions: Definitions,
    board_prefix: str,
    clock: Clock,
) -> None:
    arena = f"{board_prefix}-arena"
    processor = make_processor(settings=LAZY)
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

    # Then both are applied, each in its own week, and week 48 is archived with the late one.
    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED, OutcomeKind.APPLIED]
    archive = await store.archived_entries(mysql_pool, arena, "2026-W48")
    assert archive is not None
    assert [(e.final_rank, e.player_id, e.score) for e in archive] == [
        (1, "bob", 300),
        (2, "fay", 250),
        (3, "cid", 200),
    ]
    # The prizes ride on the batch's first outcome, for the rewards processor.
    prizes = [o for o in outcomes[0].outputs if o.envelope.HasField("season_prize_awarded")]
    assert {o.topic for o in prizes} == {PRIZE_TOPIC}
    awarded = [(o.envelope.player_id, o.envelope.season_prize_awarded.rank) for o in prizes]
    assert awarded == [("bob", 1), ("fay", 2), ("cid", 3)]
    assert {o.envelope.season_prize_awarded.season_id for o in prizes} == {
        season_id(arena, "2026-W48")
    }
    # Boards that award no prizes are archived but announce nothing (speed, daily).
    assert await store.archived_entries(mysql_pool, f"{board_prefix}-speed", "2026-11-29") == []

    # A submission to the closed week arriving later is rejected, never applied.
    later = submission(arena, "gus", 999, datetime(2026, 11, 29, 23, 0, tzinfo=UTC))
    (rejected,) = await processor.handle([later])
    assert (rejected.kind, rejected.reason) == (OutcomeKind.REJECTED, "closed")
    assert await redis_client.zscore(keys.board_key(unique_name, arena, "2026-W48"), "gus") is None

    # Closing again (the CLI) or a restarted worker announce the same ids; the archive stands.
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
    assert [o.envelope.event_id for o in again.outputs] == [o.envelope.event_id for o in prizes]
    restarted = await make_processor(settings=LAZY).handle(
        [submission(arena, "hal", 1, AFTER_RESET)]
    )
    reannounced = [o for o in restarted[0].outputs if o.envelope.HasField("season_prize_awarded")]
    assert [o.envelope.event_id for o in reannounced] == [o.envelope.event_id for o in prizes]


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
