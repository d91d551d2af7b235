"""The outbox remembers the default partitioner's choice per key, and forgets it when the
topic's partitions change. A plain fake producer records where each record went; the
integration test (tests/integration/runtime/test_runtime_outbox.py) checks a real broker."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from topics.settings import KafkaSettings
from workers.runtime.outbox import Outbox
from workers.runtime.records import OutboundRecord

KEYS = [f"player-{n}".encode() for n in range(200)]


class _Batch:
    def __init__(self) -> None:
        self.keys: list[bytes | None] = []

    def append(self, *, key: bytes | None, value: bytes | None, **_: Any) -> object:
        self.keys.append(key)
        return object()

    def close(self) -> None:
        pass


class _Producer:
    """Only what Outbox.send_all uses; every batch is acknowledged at once."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.placed: dict[bytes | None, int] = {}

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(
        self, batch: _Batch, topic: str, *, partition: int
    ) -> asyncio.Future[None]:
        for key in batch.keys:
            self.placed[key] = partition
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _expected(partitions: int) -> dict[bytes | None, int]:
    every = list(range(partitions))
    return {key: DefaultPartitioner()(key, every, every) for key in KEYS}


async def test_keys_go_where_the_default_partitioner_puts_them_before_and_after_a_change() -> None:
    # Given an outbox whose producer sees 3 partitions
    outbox = Outbox(KafkaSettings(bootstrap_servers="127.0.0.1:9"))
    await outbox.stop()  # the real producer, never started
    producer = _Producer(3)
    outbox._producer = producer  # the fake
    records = [OutboundRecord("t", key, b"v") for key in KEYS]

    # When it sends the same keys twice (the second time from what it remembered)
    await outbox.send_all(records)
    first = dict(producer.placed)
    producer.placed.clear()
    await outbox.send_all(records)

    # Then both times each key is where the producer's own partitioner puts it
    assert first == producer.placed == _expected(3)
    assert len(set(first.values())) == 3

    # And when the topic grows to 6 partitions, the keys follow the partitioner there
    producer.partitions = 6
    producer.placed.clear()
    await outbox.send_all(records)
    assert producer.placed == _expected(6)
    assert producer.placed != first
