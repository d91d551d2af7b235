"""The consumer lag metric counts every record waiting, also when they were written as one batch.

The regression: lag was measured against the embedded broker's ListOffsets answer (the last
batch's base offset + 1), so a batch of records waiting in a retry tier showed as lag 1.
"""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from topics.admin import apply_plan
from topics.catalog import DAY_MS, ConsumerGroup, Topic
from topics.settings import KafkaSettings
from workers.processors.probe import ProbeProcessor
from workers.runtime.context import WorkerContext
from workers.runtime.worker import Worker

from .conftest import TEST_RUNTIME
from .runtime_helpers import login, publish, wait_until

pytestmark = pytest.mark.integration

#: Events that fail at once and wait in the first retry tier, written there as one batch.
WAITING = 5
#: Long enough that nothing waiting in the tier comes due while the test looks.
TIER_DELAY_S = 600


async def slow_retry_group(settings: KafkaSettings, unique_name: str) -> ConsumerGroup:
    """A probe group whose first retry tier holds records for ten minutes."""
    source = Topic(
        name=f"{unique_name}.events",
        partitions=1,
        retention_ms=DAY_MS,
        owner="runtime-tests",
        description="Events of one runtime test.",
        payloads=frozenset({"daily_login"}),
    )
    group = ConsumerGroup(
        unique_name, (source,), retry_delays_s=(TIER_DELAY_S,), retry_partitions=2
    )
    await apply_plan(settings, (source, *group.companions()))
    return group


async def test_lag_counts_every_record_waiting_in_a_retry_tier(
    kafka_settings: KafkaSettings, context: WorkerContext, unique_name: str
) -> None:
    # Given events that fail their first attempt, and a worker measuring lag often
    group = await slow_retry_group(kafka_settings, unique_name)
    await publish(
        kafka_settings,
        group.inputs[0],
        [login("flaky-p", f"{unique_name}-k{i}") for i in range(WAITING)],
    )
    own = WorkerContext(context.settings, context.redis, context.mysql, CollectorRegistry())
    runtime = TEST_RUNTIME.model_copy(update={"lag_refresh_s": 0.05})
    worker = Worker(own, [ProbeProcessor(own, group)], runtime=runtime)
    tier = group.retry_tiers[0].topic

    def tier_lag() -> float:
        return sum(
            own.metrics.get_sample_value(
                "liveops_consumer_lag",
                {"topic": tier.name, "partition": str(p), "processor": "probe"},
            )
            or 0
            for p in range(tier.partitions)
        )

    async def all_waiting_counted() -> bool:
        return tier_lag() == WAITING

    # When the worker has sent them to the retry tier (one batch) and they wait there
    running = asyncio.create_task(worker.run())
    try:
        # Then the retry consumer's lag counts every one of them
        assert await wait_until(all_waiting_counted), f"tier lag {tier_lag()}, not {WAITING}"
    finally:
        worker.request_stop()
        await running
