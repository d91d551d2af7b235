"""Outputs survive a worker that dies after scoring: a redelivery publishes them again, the same.

The scoring script sets each event's dedup marker with its effect; the runtime publishes the
outputs later. A worker killed in between (or whose before_commit() fails, so the batch is
polled again) used to leave the redelivered events DUPLICATE with no outputs: rank changes and
rejections lost. Now the script keeps the answers that make outputs, and a duplicate carries
them again, rebuilt with the same ids and content.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import aiomysql
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from schemas.codec import decode
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.admin import apply_plan
from topics.catalog import DAY_MS, LEADERBOARD_RANKS, ConsumerGroup, Topic
from topics.settings import KafkaSettings
from workers.processors.leaderboards import keys
from workers.processors.leaderboards.definitions import Definitions
from workers.processors.leaderboards.periods import period_at
from workers.processors.leaderboards.processor import LeaderboardsProcessor
from workers.processors.leaderboards.settings import LeaderboardSettings
from workers.processors.leaderboards.store import count_submissions
from workers.runtime.context import WorkerContext
from workers.runtime.keys import DONE
from workers.runtime.processor import Outcome, OutcomeKind
from workers.runtime.worker import RunLimits, Worker
from workers.settings import FleetSettings, RedisSettings

from .lb_helpers import NOW, ProcessorFactory, seconds_after, submission
from .test_leaderboard_worker import FAST, publish

pytestmark = pytest.mark.integration
DEADLINE_S = 30.0


def mixed_batch(board_prefix: str, now: datetime) -> list[Envelope]:
    """Submissions with and without outputs, and refusals of every kind.

    arena: best, higher is better, top 3 announced, five submissions per player and period;
    speed: its period is closed (the test sets the marker) so the script refuses it.
    """
    arena, speed = f"{board_prefix}-arena", f"{board_prefix}-speed"
    at = iter(range(100))

    def sub(board: str, player: str, score: int) -> Envelope:
        return submission(board, player, score, seconds_after(now, next(at)))

    return [
        sub(arena, "ann", 100),  # first on an empty board: entered the top 3, reached first
        sub(arena, "bob", 200),  # takes first: bob entered and reached; ann overtaken
        sub(arena, "cat", 50),  # third: entered the top 3
        sub(arena, "dan", 10),  # fourth: ranks read, no event
        sub(arena, "bob", 150),  # not better than bob's best: nothing changes
        *(sub(arena, "eve", 1 + i) for i in range(5)),  # below the top 3: no events
        sub(arena, "eve", 6),  # the sixth of the period: refused by the script (rate limit)
        sub(speed, "ann", 30),  # its period is closed: refused by the script
        sub("no-such-board", "ann", 1),  # refused before scoring (unknown board)
        sub(arena, "bob", 1_000_001),  # refused before scoring (out of range)
    ]


def outputs_of(outcomes: Sequence[Outcome]) -> list[list[tuple[str, bytes]]]:
    """Per event: each output's topic and exact bytes (ids, times and content)."""
    return [
        [(o.topic.name, o.envelope.SerializeToString(deterministic=True)) for o in outcome.outputs]
        for outcome in outcomes
    ]


async def close_period(
    client: aioredis.Redis, prefix: str, board_id: str, defs: Definitions
) -> None:
    """Mark the board's period at NOW archived, as closing.py does: the script refuses it."""
    board = defs.get(board_id)
    assert board is not None
    await client.set(keys.closed_key(prefix, board_id, period_at(board, NOW).key), "1")


async def test_a_redelivery_after_a_lost_publish_carries_the_same_outputs(
    make_processor: ProcessorFactory,
    redis_client: aioredis.Redis,
    unique_name: str,
    board_prefix: str,
    definitions: Definitions,
) -> None:
    # Given a worker that scored a mixed batch and died before publishing its outputs
    await close_period(redis_client, unique_name, f"{board_prefix}-speed", definitions)
    batch = mixed_batch(board_prefix, NOW)
    first = await make_processor().handle(batch)
    kinds = [o.kind for o in first]
    assert kinds == [OutcomeKind.APPLIED] * 10 + [OutcomeKind.REJECTED] * 4
    lost = outputs_of(first)
    assert [len(o) for o in lost] == [2, 3, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]

    # When a restarted worker gets the same batch, twice (the second after another crash)
    registry = CollectorRegistry()
    restarted = make_processor(registry=registry)
    again = await restarted.handle(batch)
    once_more = await restarted.handle(batch)

    # Then every event is a duplicate carrying exactly the outputs of the first delivery
    # (same ids, same content); those that had none still have none
    assert [o.kind for o in again] == [OutcomeKind.DUPLICATE] * len(batch)
    assert outputs_of(again) == lost
    assert outputs_of(once_more) == lost
    # and the markers stay plain `done` for every reader of markers, kept answers beside them
    # only for the events with outputs, as long as the markers
    for envelope, outputs in zip(batch, lost, strict=True):
        marker = keys.dedup_key(unique_name, envelope.idempotency_key)
        kept = keys.kept_key(unique_name, envelope.idempotency_key)
        assert await redis_client.get(marker) == DONE.encode()
        assert await redis_client.exists(kept) == (1 if outputs else 0)
        if outputs:
            assert abs(await redis_client.ttl(kept) - await redis_client.ttl(marker)) <= 1
    # Refusals are counted once (by the first worker), the outputs made again are counted.
    rejections = registry.get_sample_value(
        "liveops_leaderboard_rejections_total",
        {"leaderboard": "unknown", "reason": "unknown_leaderboard"},
    )
    assert rejections is None
    again_total = sum(
        registry.get_sample_value("liveops_leaderboard_outputs_again_total", {"leaderboard": label})
        or 0.0
        for label in (f"{board_prefix}-arena", f"{board_prefix}-speed", "unknown")
    )
    assert again_total == 2 * sum(len(o) for o in lost)


async def test_a_plain_duplicate_has_no_outputs_and_keeps_nothing(
    make_processor: ProcessorFactory,
    redis_client: aioredis.Redis,
    unique_name: str,
    board_prefix: str,
) -> None:
    # Given submissions whose first delivery produced no output: below the top 3, or moving
    # up within it (third to second: no threshold entered, not first)
    arena = f"{board_prefix}-arena"
    leaders = [submission(arena, f"top{i}", 1000 + i, seconds_after(NOW, i)) for i in range(3)]
    quiet = [submission(arena, "top0", 1002, seconds_after(NOW, 9))]
    quiet += [submission(arena, f"low{i}", 1 + i, seconds_after(NOW, 10 + i)) for i in range(4)]
    processor = make_processor()
    await processor.handle(leaders)
    first = await processor.handle(quiet)
    assert [(o.kind, o.outputs) for o in first] == [(OutcomeKind.APPLIED, ())] * len(quiet)

    # When they are delivered again
    again = await processor.handle(quiet)

    # Then they are plain duplicates, and nothing was kept for them
    assert [(o.kind, o.outputs) for o in again] == [(OutcomeKind.DUPLICATE, ())] * len(quiet)
    kept = [keys.kept_key(unique_name, e.idempotency_key) for e in quiet]
    assert await redis_client.exists(*kept) == 0


async def test_a_client_retry_with_another_event_id_makes_no_outputs_again(
    make_processor: ProcessorFactory, board_prefix: str
) -> None:
    # Given a submission that took first place and one refused, both announced
    arena = f"{board_prefix}-arena"
    firsts = [
        submission(arena, "ann", 100, NOW),
        submission("no-such-board", "ann", 1, NOW),
    ]
    processor = make_processor()
    announced = await processor.handle(firsts)
    assert [len(o.outputs) for o in announced] == [2, 1]

    # When the client sends each again: same idempotency key, another event id (its outputs
    # would name another source event: not the same events)
    retries = []
    for first in firsts:
        retry = Envelope()
        retry.CopyFrom(first)
        retry.event_id = f"{first.event_id}-retry"
        retries.append(retry)
    again = await processor.handle(retries)

    # Then they are plain duplicates; the original's own redelivery still has its outputs
    assert [(o.kind, o.outputs) for o in again] == [(OutcomeKind.DUPLICATE, ())] * 2
    redelivered = await processor.handle(firsts)
    assert [o.outputs for o in redelivered] == [o.outputs for o in announced]


async def ranks_records(kafka: KafkaSettings, ids: set[str]) -> dict[str, list[bytes]]:
    """Every record on the ranks topic whose event id is in `ids`: id -> each copy's value."""
    consumer = AIOKafkaConsumer(
        LEADERBOARD_RANKS.name,
        **kafka.client_kwargs(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    found: dict[str, list[bytes]] = {}
    try:
        deadline = time.monotonic() + DEADLINE_S
        while set(found) != ids and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    assert record.value is not None
                    event_id = decode(record.value).event_id
                    if event_id in ids:
                        found.setdefault(event_id, []).append(record.value)
        return found
    finally:
        await consumer.stop()


async def test_outputs_of_a_killed_worker_reach_the_topic_through_the_next_worker(
    kafka_settings: KafkaSettings,
    mysql_pool: aiomysql.Pool,
    redis_client: aioredis.Redis,
    unique_name: str,
    definitions: Definitions,
    board_prefix: str,
) -> None:
    # Given a worker that scored a batch (the script's call done: markers, boards, journal)
    # and was killed before it published the outputs or committed the offsets
    now = datetime.now(UTC)
    source = Topic(f"{unique_name}.scores", 3, DAY_MS, "leaderboards-tests", "Test input.")
    chosen = ConsumerGroup(f"{unique_name}-lb", (source,), retry_delays_s=())
    await apply_plan(kafka_settings, (source, LEADERBOARD_RANKS, chosen.dead_letter))

    class GroupLeaderboards(LeaderboardsProcessor):
        group = chosen

    def build() -> GroupLeaderboards:
        return GroupLeaderboards(
            redis=redis_client,
            mysql=mysql_pool,
            definitions=definitions,
            key_prefix=unique_name,
            settings=LeaderboardSettings(close_lazily=False),  # outputs only, no closing
        )

    speed = f"{board_prefix}-speed"  # no closed period here: one clock, the real one
    batch = [e for e in mixed_batch(board_prefix, now) if e.score_submitted.leaderboard_id != speed]
    await publish(kafka_settings, source, batch)
    lost = {
        output.envelope.event_id: output.envelope
        for outcome in await build().handle(batch)
        for output in outcome.outputs
    }
    assert len(lost) == 9

    # When the next worker consumes the uncommitted records on the real runtime
    settings = FleetSettings(kafka=kafka_settings, redis=RedisSettings(key_prefix=unique_name))
    context = WorkerContext(settings, redis_client, mysql_pool, CollectorRegistry())
    worker = Worker(context, [build()], runtime=FAST)
    await asyncio.wait_for(worker.run(RunLimits(max_events=len(batch), idle_s=15)), DEADLINE_S)

    # Then every output the dead worker made is on the ranks topic, once, byte for byte
    published = await ranks_records(kafka_settings, set(lost))
    assert set(published) == set(lost)
    for event_id, copies in published.items():
        assert [decode(value) for value in copies] == [lost[event_id]]
    # and the dead worker's journal reached MySQL through the next worker's copy.
    arena = definitions.get(f"{board_prefix}-arena")
    assert arena is not None
    applied = 10  # ann, bob twice, cat, dan, eve five times
    assert await count_submissions(mysql_pool, arena.id, period_at(arena, now).key) == applied
