"""True end offsets against the real embedded broker, whose ListOffsets(latest) falls short.

The embedded broker answers ListOffsets with the last batch's base offset + 1; these tests
write batches of several records on purpose (linger_ms, sends gathered) so that bug shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.codec import encode
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.admin import apply_plan
from topics.catalog import PLAYER_ACTIONS, Topic
from topics.offsets import EndOffsetReader, end_offsets
from topics.settings import KafkaSettings
from topics.tail import TailOptions, tail_topic

pytestmark = pytest.mark.integration

#: Long enough that every record sent in one go lands in one batch per partition.
BATCH_LINGER_MS = 50


async def our_topic(settings: KafkaSettings, unique_name: str, partitions: int) -> Topic:
    """A copy of player.actions.v1 under the test's own name, created on the broker."""
    topic = replace(
        PLAYER_ACTIONS, name=f"{unique_name}.{PLAYER_ACTIONS.name}", partitions=partitions
    )
    await apply_plan(settings, (topic,))
    return topic


def partitions_of(topic: Topic) -> list[TopicPartition]:
    return [TopicPartition(topic.name, p) for p in range(topic.partitions)]


async def send_batch(settings: KafkaSettings, topic: Topic, partitions: Sequence[int]) -> None:
    """One record per item of `partitions`, sent together: one batch per partition."""
    producer = AIOKafkaProducer(
        **settings.client_kwargs(),
        enable_idempotence=settings.enable_idempotence,
        linger_ms=BATCH_LINGER_MS,
    )
    await producer.start()
    try:
        value = encode(Envelope(event_id="e", idempotency_key="e", player_id="p"))
        acks = [await producer.send(topic.name, value, partition=p) for p in partitions]
        await asyncio.gather(*acks)
    finally:
        await producer.stop()


async def plain_end_offsets(
    settings: KafkaSettings, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """What aiokafka's own end_offsets() answers (ListOffsets only)."""
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def test_end_offsets_count_every_record_of_a_batch(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    # Given ten records written as one batch on a one-partition topic
    topic = await our_topic(kafka_settings, unique_name, partitions=1)
    await send_batch(kafka_settings, topic, [0] * 10)
    (tp,) = partitions_of(topic)

    # When the ends are read by aiokafka alone, and by ours
    plain = await plain_end_offsets(kafka_settings, [tp])
    ours = await end_offsets(kafka_settings, [tp])

    # Then aiokafka's answer falls short (the broker bug this guards against; if this fails,
    # the broker was fixed and verify_end_offsets may default to off), ours is the true end
    assert plain[tp] < 10
    assert ours == {tp: 10}


async def test_end_offsets_per_partition_after_several_batches(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    # Given three partitions: two batches on p0 (4 then 3 records), one on p1 (5), none on p2
    topic = await our_topic(kafka_settings, unique_name, partitions=3)
    await send_batch(kafka_settings, topic, [0] * 4 + [1] * 5)
    await send_batch(kafka_settings, topic, [0] * 3)

    # When the ends are read
    ends = await end_offsets(kafka_settings, partitions_of(topic))

    # Then each partition's end is its record count, the empty one included
    assert ends == dict(zip(partitions_of(topic), (7, 5, 0), strict=True))


async def test_one_reader_sees_records_written_between_reads(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    # Given a reader that already read a partition's end once (as a worker's lag metric does)
    topic = await our_topic(kafka_settings, unique_name, partitions=2)
    await send_batch(kafka_settings, topic, [0] * 6)
    tps = partitions_of(topic)
    async with EndOffsetReader(kafka_settings) as reader:
        first = await reader.read(tps)

        # When more records arrive and it reads again, twice at once
        await send_batch(kafka_settings, topic, [0] * 4 + [1] * 2)
        again, only_p1 = await asyncio.gather(reader.read(tps), reader.read(tps[1:]))

    # Then every read answers the ends of its own moment
    assert first == {tps[0]: 6, tps[1]: 0}
    assert again == {tps[0]: 10, tps[1]: 2}
    assert only_p1 == {tps[1]: 2}


async def test_verification_switched_off_answers_what_the_broker_says(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    # Given records written as one batch, and settings that trust ListOffsets
    topic = await our_topic(kafka_settings, unique_name, partitions=1)
    await send_batch(kafka_settings, topic, [0] * 8)
    trusting = kafka_settings.model_copy(update={"verify_end_offsets": False})

    # When the ends are read
    ends = await end_offsets(trusting, partitions_of(topic))

    # Then the answer is the broker's own, unconfirmed (short on the embedded broker)
    assert ends == await plain_end_offsets(kafka_settings, partitions_of(topic))


async def test_tail_from_the_end_shows_nothing_of_the_last_batch(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    # Given a topic whose last batch holds several records
    topic = await our_topic(kafka_settings, unique_name, partitions=1)
    await send_batch(kafka_settings, topic, [0] * 5)

    # When it is tailed from the end (an idle timeout is the only way to show nothing old
    # comes: seeking to the broker's end would print offsets 1 to 4 at once)
    lines: list[str] = []
    shown = await tail_topic(kafka_settings, topic, TailOptions(idle_timeout_s=1.0), lines.append)

    # Then no record written before the tail started is shown
    assert (shown, lines) == (0, [])
