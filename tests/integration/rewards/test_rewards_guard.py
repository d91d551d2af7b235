"""The durable claim guards rewards on its own, as under `dedup = processor` (no Redis lease).

Through handle() and before_commit() directly against the real MySQL (the runtime's Redis
dedup is not involved): a batch mixing new and granted events, and two workers handling the
same events at the same moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import aiomysql
import pytest
from rewards_harness import apply, ledger_count, level_completed, started_processor, wallet

from schemas.liveops.v1.envelope_pb2 import Envelope
from workers.errors import TransientError
from workers.processors.rewards.processor import RewardsProcessor
from workers.runtime.failures import classify
from workers.runtime.processor import Outcome, OutcomeKind

pytestmark = pytest.mark.integration


async def test_a_batch_of_new_and_already_granted_events_applies_only_the_new(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    # The claim's fast path (one INSERT of every key) fails on the old key; its fallback
    # must still claim and grant the new one.
    processor = await started_processor(pool, tmp_path)
    old = level_completed(unique_name)
    await apply(processor, [old])

    outcomes = await apply(processor, [level_completed(unique_name), old])

    assert [o.kind for o in outcomes] == [OutcomeKind.APPLIED, OutcomeKind.DUPLICATE]
    assert await wallet(pool, unique_name) == {"coins": (20, 0), "key": (2, 0)}
    assert await ledger_count(pool, unique_name) == 4


async def test_the_same_events_handled_by_two_workers_at_once_are_granted_once(
    pool: aiomysql.Pool, tmp_path: Path, unique_name: str
) -> None:
    # Given: two workers holding the same events (a rebalance moved the partition while its
    # old owner was still in the batch), with no Redis lease in front of them.
    first = await started_processor(pool, tmp_path)
    second = await started_processor(pool, tmp_path)
    batch = [level_completed(unique_name) for _ in range(30)]

    # When: both handle them at the same time, retrying as the runtime does when the claim
    # reports the race as transient.
    results = await asyncio.gather(
        handle_retrying(first, batch), handle_retrying(second, batch[::-1])
    )

    # Then: each event is applied by one of them and is a duplicate for the other.
    pairs = zip(results[0], results[1][::-1], strict=True)
    assert [sorted((a.kind, b.kind)) for a, b in pairs] == [
        [OutcomeKind.APPLIED, OutcomeKind.DUPLICATE]
    ] * len(batch)
    assert await wallet(pool, unique_name) == {"coins": (300, 0), "key": (30, 0)}
    assert await ledger_count(pool, unique_name) == 60


async def handle_retrying(processor: RewardsProcessor, batch: Sequence[Envelope]) -> list[Outcome]:
    for _ in range(50):
        try:
            return await apply(processor, batch)
        except Exception as exc:  # sorted as the runtime sorts it
            if not isinstance(classify(exc), TransientError):
                raise
            await asyncio.sleep(0.02)
    raise AssertionError("the claim still reports a race after 50 attempts")
