"""Faults the demo injects below the gateway, where the workers must cope on their own.

- A producer retry after a lost acknowledgement: records already on the topic are published
  again, byte for byte. The workers must count them as duplicates and apply nothing twice.
- Garbage bytes on an input topic: the worker must dead-letter them with a reason and go on.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from topics.catalog import Topic
from topics.offsets import end_offsets
from topics.settings import KafkaSettings

GARBAGE = b"\x08\x96\x01not-a-protobuf-envelope\xff\xfe"


async def republish_first_records(kafka: KafkaSettings, topic: Topic, count: int) -> int:
    """Publish the first `count` records of `topic` again, keys, values and headers unchanged."""
    consumer = AIOKafkaConsumer(**kafka.client_kwargs(), enable_auto_commit=False)
    producer = AIOKafkaProducer(
        **kafka.client_kwargs(), acks="all", enable_idempotence=kafka.enable_idempotence
    )
    await consumer.start()
    await producer.start()
    try:
        partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await end_offsets(kafka, partitions)  # true ends, as the broker's fall short
        records: list[ConsumerRecord] = []
        while len(records) < count and await _behind(consumer, ends):
            batches = await consumer.getmany(timeout_ms=500, max_records=count)
            records += [r for batch in batches.values() for r in batch]
        for record in records[:count]:
            await producer.send_and_wait(
                topic.name, record.value, key=record.key, headers=list(record.headers)
            )
        return min(count, len(records))
    finally:
        await producer.stop()
        await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    positions = [await consumer.position(tp) for tp in ends]
    return any(position < end for position, end in zip(positions, ends.values(), strict=True))


async def publish_garbage(kafka: KafkaSettings, topic: Topic, key: bytes) -> None:
    producer = AIOKafkaProducer(
        **kafka.client_kwargs(), acks="all", enable_idempotence=kafka.enable_idempotence
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic.name, GARBAGE, key=key)
    finally:
        await producer.stop()
