"""The outbox packs records into producer batches: same partitions as send(), order kept."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

from topics.admin import apply_plan
from topics.catalog import DAY_MS, Topic
from topics.settings import KafkaSettings
from workers.runtime.outbox import Outbox
from workers.runtime.records import OutboundRecord

from .runtime_helpers import read_all

pytestmark = pytest.mark.integration
PARTITIONS = 3
#: Enough bytes to fill several producer batches (16 KiB each) per partition.
RECORDS = 1_200


async def test_records_land_where_send_would_put_them_in_order_with_headers(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    # Given a batch of records for 7 keys, larger than one producer batch per partition
    topic = Topic(f"{unique_name}.out", PARTITIONS, DAY_MS, "runtime-tests", "Outbox test.")
    await apply_plan(kafka_settings, (topic,))
    records = [
        OutboundRecord(
            topic.name, f"player-{i % 7}".encode(), f"{i:06d}".encode() * 10, (("n", b"%d" % i),)
        )
        for i in range(RECORDS)
    ]

    # When the outbox sends them
    async with Outbox(kafka_settings) as outbox:
        await outbox.send_all(records)

    # Then every record is there once, with its headers
    found = await read_all(kafka_settings, topic, RECORDS)
    assert sorted(r.value or b"" for r in found) == sorted(r.value or b"" for r in records)
    assert all(int(r.header("n") or -1) == int((r.value or b"")[:6]) for r in found)
    # And each key is on the partition the producer's default partitioner picks for it
    partitioner = DefaultPartitioner()
    every = list(range(PARTITIONS))
    for record in found:
        assert record.partition == partitioner(record.key, every, every)
    # And each key's records keep the order they were sent in
    by_key: dict[bytes | None, list[bytes]] = {}
    for record in sorted(found, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key, []).append(record.value or b"")
    for values in by_key.values():
        assert values == sorted(values)
