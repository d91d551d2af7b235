"""The leaderboards processor on the real runtime: broker in, Redis and MySQL, rank events out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import aiomysql
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry

from schemas.codec import decode, encode
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.admin import apply_plan
from topics.catalog import DAY_MS, LEADERBOARD_RANKS, ConsumerGroup, Topic
from topics.settings import KafkaSettings
from workers.processors.leaderboards.definitions import Definitions
from workers.processors.leaderboards.periods import period_at
from workers.processors.leaderboards.processor import LeaderboardsProcessor
from workers.processors.leaderboards.reads import read_top
from workers.processors.leaderboards.settings import LeaderboardSettings
from workers.processors.leaderboards.store import count_submissions
from workers.processors.registry import factories_for
from workers.runtime.context import WorkerContext
from workers.runtime.keys import dedup_key
from workers.runtime.processor import OutcomeKind
from workers.runtime.settings import RuntimeSettings
from workers.runtime.worker import RunLimits, Worker
from workers.settings import FleetSettings, RedisSettings

from .lb_helpers import seconds_after, submission

pytestmark = pytest.mark.integration
FAST = RuntimeSettings(session_timeout_ms=2_000, heartbeat_interval_ms=300, lease_ms=10_000)
DEADLINE_S = 30.0


async def publish(kafka: KafkaSettings, topic: Topic, envelopes: Sequence[Envelope]) -> None:
    producer = AIOKafkaProducer(**kafka.client_kwargs(), acks="all")
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(
                topic.name, encode(envelope), key=envelope.player_id.encode()
            )
    finally:
        await producer.stop()


async def rank_events_for(kafka: KafkaSettings, board_id: str, expected: int) -> list[Envelope]:
    consumer = AIOKafkaConsumer(
        LEADERBOARD_RANKS.name,
        **kafka.client_kwargs(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        found: list[Envelope] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(found) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found += [
                    e
                    for e in (decode(record.value) for record in records)
                    if e.leaderboard_rank_changed.leaderboard_id == board_id
                ]
        return found
    finally:
        await consumer.stop()


async def test_submissions_through_the_worker_rank_once_and_announce_changes(
    kafka_settings: KafkaSettings,
    mysql_pool: aiomysql.Pool,
    redis_client: aioredis.Redis,
    unique_name: str,
    definitions: Definitions,
    board_prefix: str,
) -> None:
    # Given a private score topic with 12 submissions, two of them sent twice by the client:
    source = Topic(f"{unique_name}.scores", 3, DAY_MS, "leaderboards-tests", "Test input.")
    chosen = ConsumerGroup(f"{unique_name}-lb", (source,), retry_delays_s=())
    await apply_plan(kafka_settings, (source, LEADERBOARD_RANKS, chosen.dead_letter))
    arena = f"{board_prefix}-arena"
    now = datetime.now(UTC)
    events = [
        submission(arena, f"p{i % 4}", 100 + 10 * i, seconds_after(now, i)) for i in range(12)
    ]
    await publish(kafka_settings, source, [*events, events[3], events[7]])

    class GroupLeaderboards(LeaderboardsProcessor):
        group = chosen

    processor = GroupLeaderboards(
        redis=redis_client,
        mysql=mysql_pool,
        definitions=definitions,
        key_prefix=unique_name,
        kafka=kafka_settings,
    )
    settings = FleetSettings(kafka=kafka_settings, redis=RedisSettings(key_prefix=unique_name))
    context = WorkerContext(settings, redis_client, mysql_pool, CollectorRegistry())
    # When a worker consumes all 14 records:
    worker = Worker(context, [processor], runtime=FAST)
    await asyncio.wait_for(worker.run(RunLimits(max_events=14, idle_s=15)), DEADLINE_S)

    # Then each player holds their best, each submission is recorded once in MySQL,
    board = definitions.get(arena)
    assert board is not None
    period = period_at(board, now)
    view = await read_top(redis_client, prefix=unique_name, board=board, period=period)
    assert [(e.player_id, e.score) for e in view.entries] == [
        ("p3", 210),
        ("p2", 200),
        ("p1", 190),
        ("p0", 180),
    ]
    assert await count_submissions(mysql_pool, arena, period.key) == 12
    # and the rank changes reached the ranks topic, each event id once.
    changes = await rank_events_for(kafka_settings, arena, expected=1)
    assert changes
    assert len({e.event_id for e in changes}) == len(changes)


async def test_the_registered_factory_builds_a_ready_processor(
    kafka_settings: KafkaSettings,
    mysql_pool: aiomysql.Pool,
    redis_client: aioredis.Redis,
    unique_name: str,
) -> None:
    (factory,) = factories_for("leaderboards").values()
    # The worker's Kafka settings: start() starts the lazy closer's producer and offset reader.
    settings = FleetSettings(kafka=kafka_settings, redis=RedisSettings(key_prefix=unique_name))
    processor = factory(WorkerContext(settings, redis_client, mysql_pool, CollectorRegistry()))
    assert isinstance(processor, LeaderboardsProcessor)
    assert processor.group.name == "liveops.leaderboards"
    assert processor.definitions.get("arena-weekly") is not None  # the packaged file
    await processor.start()
    try:
        assert await processor.ready()
    finally:
        await processor.stop()


async def test_the_registered_processor_keeps_dedup_markers_for_the_runtime_ttl(
    mysql_pool: aiomysql.Pool, redis_client: aioredis.Redis, unique_name: str
) -> None:
    # Given a fleet whose runtime keeps dedup markers for 1234 s (LIVEOPS_RUNTIME__DEDUP_TTL_S),
    (factory,) = factories_for("leaderboards").values()
    settings = FleetSettings(
        redis=RedisSettings(key_prefix=unique_name),
        runtime=RuntimeSettings(dedup_ttl_s=1234),
        # No lazy closing: it would archive the packaged boards' periods in the shared database.
        leaderboards=LeaderboardSettings(close_lazily=False),
    )
    processor = factory(WorkerContext(settings, redis_client, mysql_pool, CollectorRegistry()))
    await processor.start()
    try:
        # When the registered leaderboards processor scores one submission,
        event = submission("arena-weekly", f"{unique_name}-p", 500, datetime.now(UTC))
        (outcome,) = await processor.handle([event])
    finally:
        await processor.stop()

    # Then the marker its script set lives as long as the runtime's setting says.
    assert outcome.kind == OutcomeKind.APPLIED
    ttl_s = await redis_client.ttl(dedup_key(unique_name, "leaderboards", event.idempotency_key))
    assert 1200 < ttl_s <= 1234
