"""The retry loop holds back only the partitions whose next record is not due yet."""

from __future__ import annotations

import time
from typing import Any, cast

import redis.asyncio as aioredis
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from topics.catalog import PLAYER_ACTIONS, ConsumerGroup
from workers.runtime import headers
from workers.runtime.cli import describe
from workers.runtime.dedup import Deduplicator
from workers.runtime.loop import Progress
from workers.runtime.metrics import RuntimeMetrics
from workers.runtime.outbox import Outbox
from workers.runtime.pipeline import Pipeline
from workers.runtime.records import InboundRecord
from workers.runtime.retry import RetryLoop
from workers.runtime.settings import RuntimeSettings

GROUP = ConsumerGroup("sel", (PLAYER_ACTIONS,), retry_delays_s=(10,))
TIER = GROUP.retry_tiers[0].topic.name


class FakeConsumer:
    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = assigned
        self.paused: set[TopicPartition] = set()
        self.seeks: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset

    def pause(self, tp: TopicPartition) -> None:
        self.paused.add(tp)

    def resume(self, tp: TopicPartition) -> None:
        self.paused.discard(tp)


class Named:
    name = "sel"
    version = "1"
    group = GROUP


def retry_loop(consumer: Any) -> RetryLoop:
    settings = RuntimeSettings()
    dedup = Deduplicator(
        aioredis.Redis(), prefix="x", processor="sel", worker_id="w", settings=settings
    )
    metrics = RuntimeMetrics(CollectorRegistry())
    pipeline = Pipeline(Named(), dedup, metrics, settings)  # type: ignore[arg-type]  # only name and group are read
    return RetryLoop(
        consumer,
        pipeline,
        outbox=cast(Outbox, object()),  # never used by due-time selection
        dedup=dedup,
        metrics=metrics,
        settings=settings,
        progress=Progress(),
        max_records=10,
        poll_ms=10,
    )


def record(partition: int, offset: int, due_ms: int) -> InboundRecord:
    return InboundRecord(
        TIER, partition, offset, 0, b"k", b"v", ((headers.DUE_AT, str(due_ms).encode()),)
    )


def test_not_due_record_pauses_its_partition_only() -> None:
    now_ms = int(time.time() * 1000)
    p0, p1 = TopicPartition(TIER, 0), TopicPartition(TIER, 1)
    consumer = FakeConsumer({p0, p1})
    loop = retry_loop(consumer)

    due = loop._select(
        [
            record(0, 5, now_ms - 1),
            record(0, 6, now_ms + 60_000),
            record(0, 7, now_ms - 1),
            record(1, 3, now_ms - 1),
        ]
    )

    # The due records before the first not-due one go on; the rest of p0 waits, p1 flows
    assert [(r.partition, r.offset) for r in due] == [(0, 5), (1, 3)]
    assert consumer.paused == {p0}
    assert consumer.seeks == {p0: 6}
    assert loop.progress.waiting == 1

    # Nothing resumes before the due time
    loop._before_poll()
    assert consumer.paused == {p0}


def test_due_partition_is_resumed() -> None:
    now_ms = int(time.time() * 1000)
    p0 = TopicPartition(TIER, 0)
    consumer = FakeConsumer({p0})
    loop = retry_loop(consumer)
    loop._select([record(0, 1, now_ms + 5)])
    assert consumer.paused == {p0}
    time.sleep(0.01)  # the record's due time, 5 ms away, passes
    loop._before_poll()
    assert consumer.paused == set()
    assert loop.progress.waiting == 0


def test_describe_names_what_failed_and_why_without_the_payload() -> None:
    letter = InboundRecord(
        "liveops.rewards.dlq",
        1,
        42,
        0,
        b"p1",
        b"\xff garbage",
        (
            (headers.ERROR_CLASS, b"UndecodableEventError"),
            (headers.ERROR_MESSAGE, b"not an envelope"),
            (headers.ATTEMPT, b"1"),
            (headers.ORIGINAL_TOPIC, b"player.actions.v1"),
        ),
    )
    line = describe(letter)
    assert line.startswith("1/42 undecodable (9 bytes)")
    assert "UndecodableEventError: not an envelope" in line
    assert "from player.actions.v1/" in line
