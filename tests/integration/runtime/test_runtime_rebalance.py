"""A second worker joining mid-stream: partitions move, nothing is lost or applied twice."""

from __future__ import annotations

import asyncio

import aiomysql
import pytest
import redis.asyncio as aioredis

from topics.catalog import ConsumerGroup
from topics.settings import KafkaSettings

from .conftest import MakeWorker
from .runtime_helpers import committed_total, login, probe_counts, probe_rows, publish, wait_until

pytestmark = pytest.mark.integration

EVENTS = 60


async def test_rebalance_keeps_every_effect_exactly_once(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    make_worker: MakeWorker,
    mysql_pool: aiomysql.Pool,
    redis_client: aioredis.Redis,
    unique_name: str,
) -> None:
    # Given events of 12 players, half published before the first worker starts
    events = [login(f"p{i % 12}", f"{unique_name}-k{i:03}") for i in range(EVENTS)]
    await publish(kafka_settings, group.inputs[0], events[: EVENTS // 2])
    first, second = make_worker(), make_worker()
    running = [asyncio.create_task(first.run())]
    try:
        assert await wait_until(lambda: _applied_at_least(mysql_pool, unique_name, 1))

        # When a second worker joins (a rebalance) while the rest is published
        running.append(asyncio.create_task(second.run()))
        await publish(kafka_settings, group.inputs[0], events[EVENTS // 2 :])

        # Then every event is applied and committed
        assert await wait_until(lambda: _applied_at_least(mysql_pool, unique_name, EVENTS))
        assert await wait_until(lambda: _committed(kafka_settings, group, EVENTS))
    finally:
        first.request_stop()
        second.request_stop()
        await asyncio.gather(*running)
    # And exactly once, in MySQL and in Redis, with the group rebalanced at least once
    assert len(await probe_rows(mysql_pool, unique_name)) == EVENTS
    assert sum((await probe_counts(redis_client, unique_name)).values()) == EVENTS
    rebalances = first.context.metrics.get_sample_value(
        "liveops_rebalances_total", {"processor": "probe"}
    )
    assert (rebalances or 0) >= 1


async def _applied_at_least(pool: aiomysql.Pool, like: str, count: int) -> bool:
    return len(await probe_rows(pool, like)) >= count


async def _committed(settings: KafkaSettings, group: ConsumerGroup, count: int) -> bool:
    return await committed_total(settings, group.name, group.inputs[0]) >= count
