"""Duplicates delivered two or three times leave each effect exactly once, and commit."""

from __future__ import annotations

import aiomysql
import pytest
import redis.asyncio as aioredis

from topics.catalog import ConsumerGroup
from topics.settings import KafkaSettings
from workers.runtime.worker import RunLimits

from .conftest import MakeWorker
from .runtime_helpers import committed_total, login, probe_counts, probe_rows, publish

pytestmark = pytest.mark.integration


async def test_duplicates_apply_once_and_offsets_commit(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    make_worker: MakeWorker,
    mysql_pool: aiomysql.Pool,
    redis_client: aioredis.Redis,
    unique_name: str,
) -> None:
    # Given 6 events of 2 players, half of them published 3 times, the rest twice
    events = [login(f"p{i % 2}", f"{unique_name}-k{i}") for i in range(6)]
    copies = [e for i, e in enumerate(events) for _ in range(3 if i % 2 else 2)]
    await publish(kafka_settings, group.inputs[0], copies)

    # When a worker runs until every record has an outcome
    worker = make_worker()
    handled = await worker.run(RunLimits(max_events=len(copies)))

    # Then each event is applied exactly once in MySQL and in Redis
    assert handled == len(copies)
    rows = await probe_rows(mysql_pool, unique_name)
    assert sorted(rows) == sorted(e.idempotency_key for e in events)
    assert await probe_counts(redis_client, unique_name) == {"p0": 3, "p1": 3}
    # And the outcomes say so: 6 applied, the other copies duplicates
    outcomes = worker.context.metrics.get_sample_value
    assert outcomes("liveops_outcomes_total", {"processor": "probe", "outcome": "applied"}) == 6
    assert outcomes("liveops_duplicates_total", {"processor": "probe"}) == len(copies) - 6
    # And every record is committed: a second worker finds nothing to do
    assert await committed_total(kafka_settings, group.name, group.inputs[0]) == len(copies)


async def test_second_worker_skips_everything_already_done(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    make_worker: MakeWorker,
    mysql_pool: aiomysql.Pool,
    redis_client: aioredis.Redis,
    unique_name: str,
) -> None:
    # Given events applied by a first worker, then published again (a producer retry storm)
    events = [login("p", f"{unique_name}-k{i}") for i in range(4)]
    await publish(kafka_settings, group.inputs[0], events)
    await make_worker().run(RunLimits(max_events=4))
    await publish(kafka_settings, group.inputs[0], events)

    # When a second worker (another id) consumes the copies
    second = make_worker()
    await second.run(RunLimits(max_events=4))

    # Then they are all duplicates: nothing applied twice
    sample = second.context.metrics.get_sample_value
    assert sample("liveops_duplicates_total", {"processor": "probe"}) == 4
    assert len(await probe_rows(mysql_pool, unique_name)) == 4
    assert await probe_counts(redis_client, unique_name) == {"p": 4}
