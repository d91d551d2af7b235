"""A batch's transaction commits after handle() returns (commits.py), while the next batch is
handled, as the pipelined runtime calls them. Against the real MySQL: consecutive batches of
one player see each other, a transaction that cannot commit leaves nothing behind and is
redone exactly once, and ids too long for their columns fail in handle().
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiomysql
import pytest
from rewards_harness import (
    apply,
    execute,
    ledger_count,
    level_completed,
    match_won,
    query,
    started_processor,
    wallet,
)

from workers.errors import DependencyUnavailableError
from workers.processors.rewards.processor import RewardsProcessor
from workers.runtime.processor import OutcomeKind

pytestmark = pytest.mark.integration


async def test_the_next_batch_of_a_player_sees_the_caps_of_the_one_not_yet_committed(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    # Given: the first batch creates the player's match_won counter (cap 2) and its
    # transaction is still open when the next batch is handled (no before_commit between).
    processor = await started_processor(pool, tmp_path)
    first = await processor.handle([match_won(unique_name), match_won(unique_name)])

    # When: the next batch holds a third win of the same player.
    second = await processor.handle([match_won(unique_name), level_completed(unique_name)])
    await processor.before_commit()

    # Then: it waited for the first one's counter: capped, not granted.
    assert [o.kind for o in first] == [OutcomeKind.APPLIED] * 2
    assert [o.kind for o in second] == [OutcomeKind.REJECTED, OutcomeKind.APPLIED]
    assert second[0].reason.startswith("capped")
    assert await wallet(pool, unique_name) == {"coins": (210, 0), "key": (1, 0)}


async def test_a_transaction_that_cannot_commit_is_redone_exactly_once(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    # Given: the player's wallet row exists, and another session locks it, so the batch's
    # wallet write waits after handle() returned.
    processor = await started_processor(pool, tmp_path)
    await apply(processor, [level_completed(unique_name)])
    batch = [match_won(unique_name), level_completed(unique_name)]
    async with pool.acquire() as locker, locker.cursor() as cursor:
        await cursor.execute(
            "SELECT net FROM wallet_balances WHERE player_id = %s FOR UPDATE", (unique_name,)
        )
        outcomes = await processor.handle(batch)
        assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED] * 2

        # When: its connection is lost mid-transaction (killed by the server).
        await kill_waiting_writer(pool, unique_name)
        with pytest.raises(DependencyUnavailableError):
            await processor.before_commit()
        await locker.rollback()

    # Then: nothing of the batch stayed, claims included; the redelivery applies it once.
    assert await ledger_count(pool, unique_name) == 2
    assert await wallet(pool, unique_name) == {"coins": (10, 0), "key": (1, 0)}
    redone = await apply(processor, batch)
    again = await apply(processor, batch)
    assert [o.kind for o in redone] == [OutcomeKind.APPLIED] * 2
    assert [o.kind for o in again] == [OutcomeKind.DUPLICATE] * 2
    assert await wallet(pool, unique_name) == {"coins": (120, 0), "key": (2, 0)}
    assert await ledger_count(pool, unique_name) == 5


async def test_a_batch_handled_after_one_that_failed_does_not_commit_either(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    # Given: the first batch's wallet write waits on a lock, the next batch (another player)
    # is handled meanwhile.
    processor = await started_processor(pool, tmp_path)
    other = f"{unique_name}-b"
    await apply(processor, [level_completed(unique_name)])
    first, second = [match_won(unique_name)], [match_won(other)]
    async with pool.acquire() as locker, locker.cursor() as cursor:
        await cursor.execute(
            "SELECT net FROM wallet_balances WHERE player_id = %s FOR UPDATE", (unique_name,)
        )
        await processor.handle(first)
        handling = asyncio.ensure_future(processor.handle(second))

        # When: the first batch's connection is lost.
        await kill_waiting_writer(pool, unique_name)
        await handling
        with pytest.raises(DependencyUnavailableError):
            await processor.before_commit()
        await locker.rollback()

    # Then: neither is durable (the runtime polls both again), and both apply once after.
    assert await ledger_count(pool, other) == 0
    assert await wallet(pool, unique_name) == {"coins": (10, 0), "key": (1, 0)}
    assert [o.kind for o in await apply(processor, [*first, *second])] == [OutcomeKind.APPLIED] * 2
    assert await wallet(pool, other) == {"coins": (100, 0)}


async def test_ids_too_long_for_their_columns_fail_in_handle(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    processor: RewardsProcessor = await started_processor(pool, tmp_path)
    player = f"{unique_name}-{'x' * 64}"

    outcomes = await processor.handle([level_completed(player), level_completed(unique_name)])
    await processor.before_commit()

    assert [o.kind for o in outcomes] == [OutcomeKind.FAILED, OutcomeKind.APPLIED]
    assert "player_id longer than 64" in outcomes[0].reason
    assert await wallet(pool, unique_name) == {"coins": (10, 0), "key": (1, 0)}


async def kill_waiting_writer(pool: aiomysql.Pool, player_id: str) -> None:
    """Kill the session whose statement waits on the player's wallet row lock."""
    for _ in range(200):
        rows = await query(
            pool,
            "SELECT id FROM information_schema.processlist "
            "WHERE info LIKE 'INSERT INTO wallet_balances%%' AND info LIKE %s",
            f"%{player_id}%",
        )
        if rows:
            await execute(pool, f"KILL {int(str(rows[0][0]))}")
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no session is waiting to write the wallet")
