"""Kafka side of a fault test: its own topics, its group's position, its dead letters.

A fault test never touches catalog topics: it builds a test-only ConsumerGroup on a test-only
input topic (frozen catalog types, names from the test's unique name) and creates them here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from topics.catalog import DAY_MS, ConsumerGroup, Topic
from topics.settings import KafkaSettings


def fault_group(
    name: str,
    *,
    partitions: int = 6,
    retry_delays_s: tuple[int, ...] = (1, 2, 3),
    payloads: frozenset[str] = frozenset({"daily_login"}),
) -> ConsumerGroup:
    """A consumer group (of whichever processor consumes it) on an input topic of this test
    only; `payloads` as the catalog topic the processor really reads declares them."""
    source = Topic(
        name=f"{name}.events",
        partitions=partitions,
        retention_ms=DAY_MS,
        owner="fault-tests",
        description="Events of one fault test.",
        payloads=payloads,
    )
    return ConsumerGroup(name, (source,), retry_delays_s=retry_delays_s, retry_partitions=2)


async def create_topics(settings: KafkaSettings, group: ConsumerGroup) -> None:
    """Create the group's inputs, retry tiers and dead-letter topic (existing ones are fine)."""
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        for topic in (*group.inputs, *group.companions()):
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [NewTopic(topic.name, topic.partitions, settings.replication_factor)]
                )
    finally:
        await admin.close()


async def committed_offsets(
    settings: KafkaSettings, group_id: str, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """The group's committed next offsets, read with `consumer.committed()` without joining.

    aiokafka's admin list_consumer_group_offsets does not decode on the embedded broker.
    """
    consumer = AIOKafkaConsumer(
        **settings.client_kwargs(), group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        committed: dict[TopicPartition, int] = {}
        for tp in partitions:
            offset = await consumer.committed(tp)
            if offset is not None:
                committed[tp] = offset
        return committed
    finally:
        await consumer.stop()


def lag(ends: dict[TopicPartition, int], committed: dict[TopicPartition, int]) -> int:
    """Records produced (up to `ends`, as the producer's acks gave them) not yet committed."""
    return sum(max(end - committed.get(tp, 0), 0) for tp, end in ends.items())


async def wait_until_committed(
    settings: KafkaSettings, group_id: str, ends: dict[TopicPartition, int], *, timeout_s: float
) -> int:
    """Poll the group's commits until they reach `ends`; the lag left (0 when drained)."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = lag(ends, await committed_offsets(settings, group_id, ends))
        if left == 0 or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.25)


@dataclass(frozen=True)
class ConsumedRecord:
    """A record read back from a topic (dead letters, retry tiers)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


async def read_all(
    settings: KafkaSettings, topic: Topic, *, expected: int, timeout_s: float = 30.0
) -> list[ConsumedRecord]:
    """Every record of `topic` from the beginning: read up to the high watermark of every
    partition (as the fetch responses report it, which the embedded broker gets right), and on
    until at least `expected` records are there or the deadline passes."""
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumedRecord] = []
    try:
        partitions = [TopicPartition(topic.name, index) for index in range(topic.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200, max_records=1000)
            for batch in batches.values():
                records.extend(
                    ConsumedRecord(
                        message.partition,
                        message.offset,
                        message.key,
                        message.value,
                        {name: bytes(value) for name, value in message.headers},
                    )
                    for message in batch
                )
            if len(records) >= expected and await _caught_up(consumer, partitions):
                break
    finally:
        await consumer.stop()
    return records


async def _caught_up(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
    """Whether every partition was fetched at least once and read up to its high watermark."""
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True
