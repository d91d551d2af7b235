"""The pipelined loop: a batch settles while the next is handled, and nothing gets through twice.

The processor here keeps its effect in memory, guarded by nothing but the runtime's Redis
dedup, so any event the runtime lets through twice shows up as a count of 2.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from typing import ClassVar

import pytest
from prometheus_client import CollectorRegistry

from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import ConsumerGroup
from topics.settings import KafkaSettings
from workers.errors import DependencyUnavailableError
from workers.runtime.context import WorkerContext
from workers.runtime.processor import Outcome
from workers.runtime.settings import RuntimeSettings
from workers.runtime.worker import RunLimits, Worker

from .conftest import TEST_RUNTIME
from .runtime_helpers import committed_total, login, publish, wait_until

pytestmark = pytest.mark.integration


class CountingProcessor:
    """Counts each event's applications; its before_commit() can be slowed down or failed."""

    name: ClassVar[str] = "pipeline-test"
    version: ClassVar[str] = "1"

    def __init__(self, group: ConsumerGroup) -> None:
        self.group = group
        self.applied: Counter[str] = Counter()
        self.handled_batches = 0
        #: Batches whose before_commit() ran (successfully) so far.
        self.settled_batches = 0
        self.settle_delay_s = 0.0
        self.failures_left = 0

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def ready(self) -> bool:
        return True

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        self.handled_batches += 1
        self.applied.update(envelope.idempotency_key for envelope in batch)
        return [Outcome.applied() for _ in batch]

    async def before_commit(self) -> None:
        await asyncio.sleep(self.settle_delay_s)
        if self.failures_left:
            self.failures_left -= 1
            raise DependencyUnavailableError("mysql: the test says it is down")
        self.settled_batches += 1


def worker_for(
    context: WorkerContext, processor: CountingProcessor, runtime: RuntimeSettings = TEST_RUNTIME
) -> Worker:
    own = WorkerContext(context.settings, context.redis, context.mysql, CollectorRegistry())
    return Worker(own, [processor], runtime=runtime)


async def test_a_copy_polled_while_its_first_delivery_settles_is_a_duplicate(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    context: WorkerContext,
    unique_name: str,
) -> None:
    # Given a worker whose batches take a while to settle
    processor = CountingProcessor(group)
    processor.settle_delay_s = 1.5
    worker = worker_for(context, processor)
    running = asyncio.create_task(worker.run(RunLimits(max_events=40)))
    try:
        events = [login(f"p{i % 4}", f"{unique_name}-k{i}") for i in range(20)]
        # When 20 events are handled, and their copies arrive while that batch still settles
        await publish(kafka_settings, group.inputs[0], events)
        assert await wait_until(lambda: _handled(processor, 20))
        assert processor.settled_batches == 0
        await publish(kafka_settings, group.inputs[0], events)
        # Then the copies wait for the first batch's marks and are counted as duplicates
        assert await asyncio.wait_for(running, timeout=60) == 40
    finally:
        worker.request_stop()
        await asyncio.gather(running, return_exceptions=True)
    assert set(processor.applied.values()) == {1}
    assert len(processor.applied) == 20
    assert await committed_total(kafka_settings, group.name, group.inputs[0]) == 40


async def test_a_failed_before_commit_holds_position_and_commits_nothing_early(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    context: WorkerContext,
    unique_name: str,
) -> None:
    # Given a processor whose before_commit() fails (its store is down)
    processor = CountingProcessor(group)
    processor.failures_left = 1_000_000
    worker = worker_for(context, processor)
    events = [login(f"p{i % 4}", f"{unique_name}-k{i}") for i in range(30)]
    await publish(kafka_settings, group.inputs[0], events)

    # When the worker runs
    running = asyncio.create_task(worker.run(RunLimits(max_events=30)))
    try:
        assert await wait_until(lambda: _down(worker))
        # Then nothing is committed while its effects are not durable
        assert await committed_total(kafka_settings, group.name, group.inputs[0]) == 0
        # And once before_commit() works again, every event is committed
        processor.failures_left = 0
        assert await asyncio.wait_for(running, timeout=60) == 30
    finally:
        worker.request_stop()
        await asyncio.gather(running, return_exceptions=True)
    assert await committed_total(kafka_settings, group.name, group.inputs[0]) == 30
    assert processor.settled_batches >= 1
    assert "processor" not in worker.progress.down
    # The batch polled again was handled again (its leases were ours): the runtime alone
    # cannot tell, which is why a processor with before_commit() needs its own guard.
    assert set(processor.applied) == {e.idempotency_key for e in events}


async def test_staged_offsets_are_committed_once_nothing_new_arrives(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    context: WorkerContext,
    unique_name: str,
) -> None:
    # Given a worker whose commit interval never runs out during the test
    processor = CountingProcessor(group)
    runtime = TEST_RUNTIME.model_copy(update={"commit_interval_ms": 3_600_000})
    worker = worker_for(context, processor, runtime)
    running = asyncio.create_task(worker.run())
    topic = group.inputs[0]
    try:
        # When events arrive in two waves, with a quiet time after each
        for wave, size in enumerate((20, 10)):
            events = [login(f"p{i % 4}", f"{unique_name}-w{wave}-k{i}") for i in range(size)]
            await publish(kafka_settings, topic, events)
            # Then each wave's offsets are committed once the loop finds nothing new to poll
            committed = 20 if wave == 0 else 30

            async def all_committed(expected: int = committed) -> bool:
                return await committed_total(kafka_settings, group.name, topic) == expected

            assert await wait_until(all_committed)
    finally:
        worker.request_stop()
        await asyncio.gather(running, return_exceptions=True)
    assert await committed_total(kafka_settings, group.name, topic) == 30
    assert processor.applied.total() == 30


async def _handled(processor: CountingProcessor, events: int) -> bool:
    return processor.applied.total() >= events


async def _down(worker: Worker) -> bool:
    return "mysql" in worker.progress.down
