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

from .conftest import TEST_RUNTIME, MakeWorker
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


def lag_partitions(worker: Worker, topic: str) -> set[int]:
    """The partitions of `topic` this worker has a lag series for."""
    return {
        int(sample.labels["partition"])
        for family in worker.context.metrics.collect()
        if family.name == "liveops_consumer_lag"
        for sample in family.samples
        if sample.labels["topic"] == topic
    }


async def test_a_partition_that_moves_is_reported_by_its_new_owner_only(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    make_worker: MakeWorker,
    unique_name: str,
) -> None:
    # Given a worker measuring lag often, owning every partition of the group's input
    source = group.inputs[0]
    everything = set(range(source.partitions))
    events = [login(f"p{i}", f"{unique_name}-k{i}") for i in range(9)]
    await publish(kafka_settings, source, events)
    runtime = TEST_RUNTIME.model_copy(update={"lag_refresh_s": 0.05})
    first, second = make_worker(runtime), make_worker(runtime)

    def reported() -> tuple[set[int], set[int]]:
        return lag_partitions(first, source.name), lag_partitions(second, source.name)

    async def first_reports_all() -> bool:
        return reported()[0] == everything

    async def split_between_them() -> bool:
        mine, theirs = reported()
        return bool(mine and theirs) and mine | theirs == everything and not mine & theirs

    running = [asyncio.create_task(first.run())]
    try:
        assert await wait_until(first_reports_all), reported()

        # When a second worker joins and takes some of the partitions
        running.append(asyncio.create_task(second.run()))

        # Then each partition's lag is reported by one worker: the first forgot what it lost
        assert await wait_until(split_between_them), reported()
    finally:
        first.request_stop()
        second.request_stop()
        await asyncio.gather(*running)
