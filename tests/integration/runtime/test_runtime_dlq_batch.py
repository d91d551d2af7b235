"""`liveops dlq`: dead letters written as one batch are all listed and all replayed.

The regression: the reader stopped at the embedded broker's ListOffsets answer (the last
batch's base offset + 1), so of a batch of dead letters it listed and replayed only the first.
"""

from __future__ import annotations

import aiomysql
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from topics.catalog import ConsumerGroup
from topics.settings import KafkaSettings
from workers.runtime import dlq, headers
from workers.runtime.worker import RunLimits

from .conftest import MakeWorker
from .runtime_helpers import login, probe_rows, publish, read_all

pytestmark = pytest.mark.integration

#: Dead letters of one player: one partition, written by one batch of the retry loop.
DEAD_LETTERS = 6
#: A flaky-3 event fails its input attempt and both retry tiers, then succeeds on replay.
ATTEMPTS_TO_DEAD_LETTER = 3


async def broker_end_offsets(settings: KafkaSettings, group: ConsumerGroup) -> int:
    """The dead-letter total by aiokafka's own end_offsets() (ListOffsets only)."""
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        topic = group.dead_letter
        ends = await consumer.end_offsets(
            [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        )
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


async def test_every_dead_letter_of_a_batch_is_listed_and_replayed(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    make_worker: MakeWorker,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
) -> None:
    # Given several events of one player dead-lettered together after their 3 attempts
    events = [login("flaky-3-p", f"{unique_name}-k{i}") for i in range(DEAD_LETTERS)]
    await publish(kafka_settings, group.inputs[0], events)
    await make_worker().run(RunLimits(max_events=DEAD_LETTERS * ATTEMPTS_TO_DEAD_LETTER))
    # (the broker's own end offset falls short: they were written as one batch)
    assert await broker_end_offsets(kafka_settings, group) < DEAD_LETTERS

    # When the dead letters are listed
    async with dlq.DeadLetterReader(kafka_settings, group) as reader:
        pending = sum(state.pending for state in await reader.state())
    planned = await dlq.replay(kafka_settings, group, max_records=100, dry_run=True)

    # Then every one of them is pending
    assert pending == DEAD_LETTERS
    assert len(planned) == DEAD_LETTERS

    # When they are replayed
    replayed = await dlq.replay(kafka_settings, group, max_records=100)

    # Then every one went back to the input topic, and none is pending any more
    assert sorted(r.offset for r in replayed) == sorted(r.offset for r in planned)
    inputs = await read_all(kafka_settings, group.inputs[0], expected=2 * DEAD_LETTERS)
    assert len([r for r in inputs if r.header(headers.REPLAYED_AT)]) == DEAD_LETTERS
    async with dlq.DeadLetterReader(kafka_settings, group) as reader:
        assert sum(state.pending for state in await reader.state()) == 0
    # And the worker applies each of them (their fourth attempt succeeds)
    await make_worker().run(RunLimits(max_events=DEAD_LETTERS))
    keys = {event.idempotency_key for event in events}
    assert set(await probe_rows(mysql_pool, unique_name)) == keys
