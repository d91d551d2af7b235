"""The rewards processor on the real runtime: broker, MySQL, RewardGranted out, under both dedup
modes (the default durable claim alone, and with the runtime's Redis lease and mark).

The second run re-reads every input (with the Redis dedup keys deleted): only the MySQL guard
stands between it and double grants, and it re-publishes the same RewardGranted events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import aiomysql
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry
from rewards_harness import level_completed, match_won, started_processor, wallet

from schemas.codec import decode, encode
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.admin import apply_plan
from topics.catalog import DAY_MS, REWARDS_GRANTED, ConsumerGroup, Topic
from topics.settings import KafkaSettings
from workers.db import MySQLTarget, create_pool
from workers.processors.rewards.processor import RewardsProcessor
from workers.runtime.context import WorkerContext
from workers.runtime.settings import RuntimeSettings
from workers.runtime.worker import RunLimits, Worker
from workers.settings import FleetSettings, RedisSettings

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


async def granted_for(kafka: KafkaSettings, prefix: str, expected: int) -> list[Envelope]:
    """RewardGranted events of players starting with `prefix`, once `expected` are there."""
    consumer = AIOKafkaConsumer(
        REWARDS_GRANTED.name,
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
                    envelope
                    for envelope in (decode(record.value) for record in records)
                    if envelope.player_id.startswith(prefix)
                ]
        return found
    finally:
        await consumer.stop()


async def run_worker(
    kafka: KafkaSettings,
    redis_client: aioredis.Redis,
    pool: aiomysql.Pool,
    processor: RewardsProcessor,
    *,
    prefix: str,
    events: int,
) -> None:
    settings = FleetSettings(kafka=kafka, redis=RedisSettings(key_prefix=prefix))
    context = WorkerContext(settings, redis_client, pool, CollectorRegistry())
    worker = Worker(context, [processor], runtime=FAST)
    await asyncio.wait_for(worker.run(RunLimits(max_events=events, idle_s=15)), DEADLINE_S)


@pytest.mark.parametrize("dedup", ["processor", "runtime"])
async def test_the_worker_grants_once_even_when_redis_forgets(
    dedup: Literal["runtime", "processor"],
    kafka_settings: KafkaSettings,
    mysql_target: MySQLTarget,
    redis_client: aioredis.Redis,
    unique_name: str,
    tmp_path: Path,
) -> None:
    # Given: a private input topic with two players' events, one sent twice by its client.
    source = Topic(f"{unique_name}.actions", 3, DAY_MS, "rewards-tests", "Test input.")
    first_group = ConsumerGroup(f"{unique_name}-a", (source,), retry_delays_s=())
    second_group = ConsumerGroup(f"{unique_name}-b", (source,), retry_delays_s=())
    await apply_plan(
        kafka_settings, (source, REWARDS_GRANTED, first_group.dead_letter, second_group.dead_letter)
    )
    alice, bob = f"{unique_name}-alice", f"{unique_name}-bob"
    retried = level_completed(alice)
    events = [retried, match_won(alice), level_completed(bob), match_won(bob)]
    await publish(kafka_settings, source, [*events, retried])
    pool = await create_pool(mysql_target, maxsize=3)
    try:
        for group in (first_group, second_group):
            processor = await started_processor(pool, tmp_path, group=group, dedup=dedup)
            # When: a worker reads everything (the second time with the dedup keys gone).
            await run_worker(
                kafka_settings, redis_client, pool, processor, prefix=unique_name, events=5
            )
            async for key in redis_client.scan_iter(match=f"{unique_name}*"):
                await redis_client.delete(key)

        # Then: each grant once in the wallet, and the same four RewardGranted events, twice.
        assert await wallet(pool, alice) == {"coins": (110, 0), "key": (1, 0)}
        assert await wallet(pool, bob) == {"coins": (110, 0), "key": (1, 0)}
    finally:
        pool.close()
        await pool.wait_closed()
    granted = await granted_for(kafka_settings, unique_name, expected=8)
    ids = sorted(envelope.event_id for envelope in granted)
    assert len(ids) == 8
    assert len(set(ids)) == 4
    assert ids[0::2] == ids[1::2]
