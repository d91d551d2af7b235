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
With `retries` (the default), the group's retry tiers must also be drained: a submission
received before the end that failed for a while waits there, and would be refused as `closed`.
A retry record's time is when it was sent to its tier, not when it was received, so no instant
splits a tier; instead, the retry group (`<group>.retry`) must have committed every record of
every tier: its committed offsets are read first, the tiers' end offsets after, and each end
must not be past its committed offset. Reading in that order makes the answer safe: the input
was committed past the end before (so each of its records that went to a tier had been sent
there), and a record moved from one tier to the next after the committed read shows in the
next tier's end. Records waiting for their delay hold the close back by at most the tiers'
delays; failures that keep filling a tier hold it until `close_max_wait_s`.
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
        self,
        kafka: KafkaSettings,
        group: ConsumerGroup,
        *,
        retries: bool = True,
        timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        """`retries`: also wait until the group's retry tiers are drained (module docstring)."""
        self._kafka = kafka
        self._group = group
        self._retries = retries and bool(group.retry_tiers)
        self._timeout_s = timeout_s
        # Built in start(): aiokafka clients need the running loop, and warn if never closed.
        self._committed: CommittedOffsetReader | None = None
        self._ends: EndOffsetReader | None = None
        self._retry_committed: CommittedOffsetReader | None = None

    async def start(self) -> None:
        committed = CommittedOffsetReader(self._kafka, self._group.name)
        ends = EndOffsetReader(self._kafka)
        retry = None
        readers: list[CommittedOffsetReader | EndOffsetReader] = [committed, ends]
        if self._retries:
            retry = CommittedOffsetReader(self._kafka, self._group.retry_group)
            readers.append(retry)
        started: list[CommittedOffsetReader | EndOffsetReader] = []
        try:
            for reader in readers:
                await reader.start()
                started.append(reader)
        except BaseException:
            for reader in reversed(started):
                await reader.stop()
            raise
        self._committed, self._ends, self._retry_committed = committed, ends, retry

    async def stop(self) -> None:
        readers = (self._retry_committed, self._ends, self._committed)
        self._committed = self._ends = self._retry_committed = None
        for reader in readers:
            if reader is not None:
                await reader.stop()

    async def read(self, instants: Sequence[datetime]) -> dict[datetime, bool]:
        """For each instant, whether the group consumed past it on every input partition
        (and drained its retry tiers, with `retries`).

        GroupPositionUnknownError when that cannot be read within the timeout (a broker
        failure, an input topic missing).
        """
        if self._committed is None or self._ends is None:
            raise RuntimeError("GroupWatermark.start() was not called")
        try:
            async with asyncio.timeout(self._timeout_s):
                answers = await self._read(self._committed, self._ends, instants)
                if any(answers.values()) and not await self._retries_drained(self._ends):
                    return dict.fromkeys(answers, False)
                return answers
        except (KafkaError, EndOffsetsUnconfirmedError, TimeoutError, OSError) as exc:
            raise GroupPositionUnknownError(f"group {self._group.name}: {exc!r}") from exc

    async def _read(
        self,
        reader: CommittedOffsetReader,
        end_reader: EndOffsetReader,
        instants: Sequence[datetime],
    ) -> dict[datetime, bool]:
        partitions = await _partitions(reader, [topic.name for topic in self._group.inputs])
        committed = await reader.read(partitions)
        answers: dict[datetime, bool] = {}
        ends: dict[TopicPartition, int] | None = None
        for instant in instants:
            first_after = await reader.offsets_at(partitions, int(instant.timestamp() * 1000))
            if ends is None and None in first_after.values():
                ends = await end_reader.read(partitions)
            answers[instant] = consumed_past(committed, first_after, ends or {})
        return answers

    async def _retries_drained(self, end_reader: EndOffsetReader) -> bool:
        """Whether the retry group committed every record of every tier: its committed
        offsets read before the tiers' ends (see the module docstring for why)."""
        reader = self._retry_committed
        if reader is None:
            return True
        tiers = [tier.topic.name for tier in self._group.retry_tiers]
        partitions = await _partitions(reader, tiers)
        committed = await reader.read(partitions)
        ends = await end_reader.read(partitions)
        return drained(committed, ends)


def drained(
    committed: Mapping[TopicPartition, int | None], ends: Mapping[TopicPartition, int]
) -> bool:
    """Whether the committed offsets reach every end (None, never committed: 0)."""
    return all((committed.get(tp) or 0) >= end for tp, end in ends.items())


async def _partitions(reader: CommittedOffsetReader, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of `topics`; GroupPositionUnknownError for a topic not on the cluster."""
    partitions: list[TopicPartition] = []
    for topic, found in (await reader.partitions_of(topics)).items():
        if not found:
            raise GroupPositionUnknownError(f"{topic} is not on the cluster")
        partitions += [TopicPartition(topic, n) for n in found]
    return partitions
