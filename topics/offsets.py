"""The true end offset of each partition, on Apache Kafka and on the embedded broker alike.

Why this exists: the embedded broker (Tansu) answers ListOffsets(latest), which is what
aiokafka's `end_offsets()` and `seek_to_end()` ask, with the base offset of the partition's last
record batch + 1. That is short of the real end whenever the last batch holds several records,
which any producer with `linger_ms` > 0 makes. Its fetch responses carry the right high
watermark. Apache Kafka gets both right. So `EndOffsetReader.read`:
1. asks ListOffsets(latest): never past the true end, so a safe place to fetch from;
2. when `KafkaSettings.verify_end_offsets` is on: assigns the partitions to its own consumer
   (no group, nothing committed, the caller's consumer untouched), seeks each to the reported
   end and polls until a fetch response has reported the high watermark of every partition;
3. returns, per partition, the larger of the two answers.
The fetch costs one round trip (a few records at most are read, then dropped).

CommittedOffsetReader reads where a consumer group committed, without joining that group: the
other half of a lag (`liveops topics lag`, the velocity job's lag gauge). It also finds where a
time falls in each partition (`offsets_at`): with the group's position, whether the group has
read past that time (the leaderboards' season closing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.errors import LiveopsError
from topics.settings import KafkaSettings

#: How long one poll waits for the fetch answer before the high watermarks are checked again.
_POLL_MS = 20
#: The fetch at the end waits at most this long on the broker for new records (a long poll
#: would only delay the answer: the high watermark is in every response, records or not).
_FETCH_MAX_WAIT_MS = 10


class EndOffsetsUnconfirmedError(LiveopsError):
    """No fetch response reported the high watermark of every partition within the timeout."""

    retriable = True


class EndOffsetReader:
    """`async with EndOffsetReader(kafka) as reader: ends = await reader.read(partitions)`.

    One reader can serve several tasks (a worker's loops share one): reads take turns. Its
    consumer has no group, so it commits nothing and joins no rebalance.
    """

    def __init__(self, kafka: KafkaSettings) -> None:
        self._verify = kafka.verify_end_offsets
        self._timeout_s = kafka.request_timeout_ms / 1000
        self._consumer: Any = AIOKafkaConsumer(
            **kafka.client_kwargs(),
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=_FETCH_MAX_WAIT_MS,
        )
        self._turn = asyncio.Lock()

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def __aenter__(self) -> EndOffsetReader:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def read(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The offset the next record of each partition will get (steps 1-3 above).

        Raises EndOffsetsUnconfirmedError when the fetch gets no answer in
        `request_timeout_ms`, and aiokafka's KafkaError when ListOffsets fails.
        """
        wanted = list(dict.fromkeys(partitions))
        if not wanted:
            return {}
        async with self._turn:
            reported: dict[TopicPartition, int] = dict(await self._consumer.end_offsets(wanted))
            if not self._verify:
                return reported
            highwaters = await self._fetch_highwaters(reported)
        return {tp: max(reported[tp], highwaters[tp]) for tp in wanted}

    async def _fetch_highwaters(
        self, starts: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        consumer = self._consumer
        # A new assignment starts with no high watermark known, so every one we see below
        # comes from a fetch made after ListOffsets answered.
        consumer.assign(list(starts))
        try:
            for tp, offset in starts.items():
                consumer.seek(tp, offset)
            deadline = time.monotonic() + self._timeout_s
            while True:
                highwaters = {tp: consumer.highwater(tp) for tp in starts}
                if all(value is not None for value in highwaters.values()):
                    return {tp: int(value) for tp, value in highwaters.items()}
                if time.monotonic() >= deadline:
                    missing = sorted(
                        f"{tp.topic}/{tp.partition}" for tp, v in highwaters.items() if v is None
                    )
                    raise EndOffsetsUnconfirmedError(
                        f"no fetch answer for {', '.join(missing)} within {self._timeout_s}s"
                    )
                # The records themselves are not wanted: polling only lets the fetches run.
                await consumer.getmany(timeout_ms=_POLL_MS, max_records=1)
        finally:
            # Stop fetching until the next read. Pause, not unsubscribe: aiokafka's fetcher
            # swallows a stop() that lands while it drops an old assignment, and hangs.
            consumer.pause(*starts)


class CommittedOffsetReader:
    """`async with CommittedOffsetReader(kafka, group_id) as reader: await reader.read(tps)`.

    Its consumer carries the group's id, so the broker answers for that group, but it never
    subscribes nor assigns: subscribing would join the group and rebalance the live members
    away from their partitions. Auto-commit off: it never commits. (Not the admin client's
    list_consumer_group_offsets: it cannot decode the embedded broker's answer.)
    """

    def __init__(self, kafka: KafkaSettings, group_id: str) -> None:
        self.group_id = group_id
        self._consumer: Any = AIOKafkaConsumer(
            **kafka.client_kwargs(), group_id=group_id, enable_auto_commit=False
        )

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()

    async def __aenter__(self) -> CommittedOffsetReader:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def partitions_of(self, topics: Iterable[str]) -> dict[str, list[int]]:
        """Each topic's partition numbers, ascending (none for a topic not on the cluster),
        from fresh metadata: the consumer's cached metadata would miss new topics."""
        await self._consumer.topics()
        return {topic: sorted(self._consumer.partitions_for_topic(topic) or ()) for topic in topics}

    async def read(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The group's committed offset of each partition; None where it never committed.

        Raises aiokafka's KafkaError; waits while the group's coordinator cannot be found
        (a caller that must not wait puts a timeout around it).
        """
        return {tp: await self._consumer.committed(tp) for tp in dict.fromkeys(partitions)}

    async def offsets_at(
        self, partitions: Iterable[TopicPartition], timestamp_ms: int
    ) -> dict[TopicPartition, int | None]:
        """Per partition, the first offset whose record time is at or after `timestamp_ms`;
        None when no record is that recent. A read of the log, not of the group."""
        wanted = list(dict.fromkeys(partitions))
        found = await self._consumer.offsets_for_times(dict.fromkeys(wanted, timestamp_ms))
        return {tp: first_offset_at_or_after(found.get(tp)) for tp in wanted}


def first_offset_at_or_after(answer: Any) -> int | None:
    """The offset in one partition's `offsets_for_times` answer; None when no record is that
    recent. Apache Kafka answers None then; the embedded broker offset 0 with timestamp -1."""
    if answer is None or answer.timestamp < 0:
        return None
    return int(answer.offset)


async def end_offsets(
    kafka: KafkaSettings, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """One `EndOffsetReader.read` on a reader of its own: for commands and one-off checks."""
    async with EndOffsetReader(kafka) as reader:
        return await reader.read(partitions)
