"""Whether a consumer group has consumed past an instant on every partition of its inputs.

Why: a period must not close while submissions received before its end are still queued (an
end-of-event spike, an outage longer than the grace): the scoring script would refuse them as
`closed`, and they would miss the archive and the prizes. The gateway produces a record when it
receives it, so a record's time is about its `received_at`. Per input partition:
1. `offsets_for_times(end)`: the first offset whose record time is at or after the end;
2. when there is none yet, the partition's end offset instead (EndOffsetReader: the embedded
   broker's ListOffsets answer falls short of it); a partition that never held a record ends
   at 0;
3. the group consumed past the end there when its committed offset is at or past that offset
   (a partition it never committed on counts as 0).
Committed offsets are read as topics/lag.py reads them: with a consumer that carries the group's
id but never subscribes nor assigns, so it never joins the group nor rebalances the live
workers; auto-commit off, so it commits nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from topics.catalog import ConsumerGroup
from topics.offsets import EndOffsetReader, EndOffsetsUnconfirmedError
from topics.settings import KafkaSettings
from workers.processors.leaderboards.errors import GroupPositionUnknownError

#: One read (called from handle(), between batches) gives up after this long.
READ_TIMEOUT_S = 5.0


def first_offset_at_or_after(answer: Any) -> int | None:
    """The offset in one partition's `offsets_for_times` answer; None when no record is that
    recent. Apache Kafka answers None then; the embedded broker offset 0 with timestamp -1."""
    if answer is None or answer.timestamp < 0:
        return None
    return int(answer.offset)


def consumed_past(
    committed: Mapping[TopicPartition, int | None],
    first_after: Mapping[TopicPartition, int | None],
    ends: Mapping[TopicPartition, int],
) -> bool:
    """Steps 2-3 of the module docstring for every partition of `first_after`."""
    for tp, offset in first_after.items():
        needed = offset if offset is not None else ends[tp]
        if (committed.get(tp) or 0) < needed:
            return False
    return True


class Watermark(Protocol):
    """What reads the group's position: GroupWatermark, or a fake in unit tests."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def read(self, instants: Sequence[datetime]) -> dict[datetime, bool]:
        """Whether the group consumed past each instant; GroupPositionUnknownError."""


class GroupWatermark:
    """`await start()`, then `read(instants)` as often as needed, then `await stop()`."""

    def __init__(
        self, kafka: KafkaSettings, group: ConsumerGroup, *, timeout_s: float = READ_TIMEOUT_S
    ) -> None:
        self._kafka = kafka
        self._group = group
        self._timeout_s = timeout_s
        # Built in start(): aiokafka clients need the running loop, and warn if never closed.
        self._consumer: Any = None
        self._ends: EndOffsetReader | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **self._kafka.client_kwargs(), group_id=self._group.name, enable_auto_commit=False
        )
        ends = EndOffsetReader(self._kafka)
        try:
            await consumer.start()
            await ends.start()
        except BaseException:
            await ends.stop()
            await consumer.stop()
            raise
        self._consumer, self._ends = consumer, ends

    async def stop(self) -> None:
        consumer, ends = self._consumer, self._ends
        self._consumer = self._ends = None
        if ends is not None:
            await ends.stop()
        if consumer is not None:
            await consumer.stop()

    async def read(self, instants: Sequence[datetime]) -> dict[datetime, bool]:
        """For each instant, whether the group consumed past it on every input partition.

        GroupPositionUnknownError when that cannot be read within the timeout (a broker
        failure, an input topic missing).
        """
        consumer, ends = self._consumer, self._ends
        if consumer is None or ends is None:
            raise RuntimeError("GroupWatermark.start() was not called")
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._read(consumer, ends, instants)
        except (KafkaError, EndOffsetsUnconfirmedError, TimeoutError, OSError) as exc:
            raise GroupPositionUnknownError(f"group {self._group.name}: {exc!r}") from exc

    async def _read(
        self, consumer: Any, reader: EndOffsetReader, instants: Sequence[datetime]
    ) -> dict[datetime, bool]:
        await consumer.topics()  # fresh metadata: partitions_for_topic answers from a cache
        partitions: list[TopicPartition] = []
        for topic in self._group.inputs:
            numbers = consumer.partitions_for_topic(topic.name)
            if not numbers:
                raise GroupPositionUnknownError(f"{topic.name} is not on the cluster")
            partitions += [TopicPartition(topic.name, n) for n in sorted(numbers)]
        committed = {tp: await consumer.committed(tp) for tp in partitions}
        answers: dict[datetime, bool] = {}
        ends: dict[TopicPartition, int] | None = None
        for instant in instants:
            found = await consumer.offsets_for_times(
                dict.fromkeys(partitions, int(instant.timestamp() * 1000))
            )
            first_after = {tp: first_offset_at_or_after(found.get(tp)) for tp in partitions}
            if ends is None and None in first_after.values():
                ends = await reader.read(partitions)
            answers[instant] = consumed_past(committed, first_after, ends or {})
        return answers
