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
All reads go through topics/offsets.py: CommittedOffsetReader (a consumer that carries the
group's id but never subscribes nor assigns, so it never joins the group nor rebalances the live
workers, and commits nothing) and EndOffsetReader.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from topics.catalog import ConsumerGroup
from topics.offsets import CommittedOffsetReader, EndOffsetReader, EndOffsetsUnconfirmedError
from topics.settings import KafkaSettings
from workers.processors.leaderboards.errors import GroupPositionUnknownError

#: One read (called from handle(), between batches) gives up after this long.
READ_TIMEOUT_S = 5.0


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
        self._readers: tuple[CommittedOffsetReader, EndOffsetReader] | None = None

    async def start(self) -> None:
        committed = CommittedOffsetReader(self._kafka, self._group.name)
        ends = EndOffsetReader(self._kafka)
        try:
            await committed.start()
            await ends.start()
        except BaseException:
            await ends.stop()
            await committed.stop()
            raise
        self._readers = (committed, ends)

    async def stop(self) -> None:
        readers, self._readers = self._readers, None
        if readers is not None:
            committed, ends = readers
            await ends.stop()
            await committed.stop()

    async def read(self, instants: Sequence[datetime]) -> dict[datetime, bool]:
        """For each instant, whether the group consumed past it on every input partition.

        GroupPositionUnknownError when that cannot be read within the timeout (a broker
        failure, an input topic missing).
        """
        if self._readers is None:
            raise RuntimeError("GroupWatermark.start() was not called")
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._read(*self._readers, instants)
        except (KafkaError, EndOffsetsUnconfirmedError, TimeoutError, OSError) as exc:
            raise GroupPositionUnknownError(f"group {self._group.name}: {exc!r}") from exc

    async def _read(
        self,
        reader: CommittedOffsetReader,
        end_reader: EndOffsetReader,
        instants: Sequence[datetime],
    ) -> dict[datetime, bool]:
        partitions: list[TopicPartition] = []
        numbers = await reader.partitions_of(topic.name for topic in self._group.inputs)
        for topic, found in numbers.items():
            if not found:
                raise GroupPositionUnknownError(f"{topic} is not on the cluster")
            partitions += [TopicPartition(topic, n) for n in found]
        committed = await reader.read(partitions)
        answers: dict[datetime, bool] = {}
        ends: dict[TopicPartition, int] | None = None
        for instant in instants:
            first_after = await reader.offsets_at(partitions, int(instant.timestamp() * 1000))
            if ends is None and None in first_after.values():
                ends = await end_reader.read(partitions)
            answers[instant] = consumed_past(committed, first_after, ends or {})
        return answers
