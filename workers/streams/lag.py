"""liveops_stream_consumer_lag: a stream job's consumer lag, measured inside the job.

faust exports no lag, and `liveops stream lag` shows it only on demand: nothing could alert,
scale or draw on it. Every `interval_s`, LagService:
1. takes the input partitions faust assigns to this process now (its changelog partitions
   left out: they process nothing) and removes the series of partitions it reported before
   and holds no longer, so a sum over pods counts a moved partition once;
2. reads the group's committed offsets (the faust app id is the group) with
   CommittedOffsetReader: it carries the group id but never subscribes nor assigns, so it
   never joins or rebalances the group, and it commits nothing;
3. reads the end offsets with EndOffsetReader (the embedded broker's ListOffsets falls short);
4. sets end - committed (the end offset where the group never committed: topics.lag.lag_of)
   on the partitions still assigned after the reads.
The readers live across rounds, started by the first round with partitions to read. A failed
round (broker down, KafkaError, unconfirmed end offsets, no answer within `timeout_s`) is one
warning line and one liveops_stream_lag_reads_failed_total; the gauge keeps its values, the
readers are closed, and the next round connects anew. It never stops the job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Sequence, Set
from typing import Protocol

import structlog
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from faust.exceptions import NotReady
from mode import Service

from topics.lag import lag_of
from topics.offsets import CommittedOffsetReader, EndOffsetReader, EndOffsetsUnconfirmedError
from topics.settings import KafkaSettings
from workers.runtime.metrics import PartitionSeries
from workers.streams.metrics import StreamMetrics

log = structlog.get_logger(__name__)

#: What a round may fail with and still be expected (the broker is down or slow).
READ_ERRORS = (KafkaError, EndOffsetsUnconfirmedError, TimeoutError, OSError)


class AssignedPartition(Protocol):
    """A faust TP, as far as the lag reads it."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


class AssignmentSource(Protocol):
    def assignment(self) -> Set[AssignedPartition]: ...


class ConsumerHolder(Protocol):
    """A faust App, as far as the lag reads it (app.consumer)."""

    @property
    def consumer(self) -> AssignmentSource: ...


class OffsetReads(Protocol):
    """Where the group committed and where partitions end: GroupOffsets, or a test's fake."""

    async def committed(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]: ...

    async def ends(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]: ...

    async def close(self) -> None:
        """Drop the connections (the next read makes new ones); never raises."""


def assigned_inputs(app: ConsumerHolder, input_topics: Collection[str]) -> set[TopicPartition]:
    """The input partitions assigned to this process now; none before the consumer starts."""
    try:
        assigned = app.consumer.assignment()
    except NotReady:
        return set()
    return {TopicPartition(tp.topic, tp.partition) for tp in assigned if tp.topic in input_topics}


class GroupOffsets:
    """The committed offsets of `group_id` and the end offsets, on readers started at first use
    and kept; close() drops them, and the next use connects anew."""

    def __init__(self, kafka: KafkaSettings, group_id: str) -> None:
        self._kafka = kafka
        self._group_id = group_id
        self._readers: tuple[CommittedOffsetReader, EndOffsetReader] | None = None

    async def _started(self) -> tuple[CommittedOffsetReader, EndOffsetReader]:
        if self._readers is None:
            readers = (
                CommittedOffsetReader(self._kafka, self._group_id),
                EndOffsetReader(self._kafka),
            )
            self._readers = readers  # kept before starting: close() stops a half-started pair
            for reader in readers:
                await reader.start()
        return self._readers

    async def committed(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        committed, _ = await self._started()
        return await committed.read(partitions)

    async def ends(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        _, ends = await self._started()
        return await ends.read(partitions)

    async def close(self) -> None:
        """Stop both readers; a reader that fails to stop is dropped all the same."""
        readers, self._readers = self._readers, None
        for reader in readers or ():
            with contextlib.suppress(*READ_ERRORS):
                await reader.stop()


class LagService(Service):
    """Measures the lag every `interval_s` (steps 1-4 of the module docstring)."""

    def __init__(
        self,
        app: ConsumerHolder,
        offsets: OffsetReads,
        *,
        job: str,
        input_topics: Collection[str],
        metrics: StreamMetrics,
        interval_s: float,
        timeout_s: float,
    ) -> None:
        super().__init__()
        self._app = app
        self._offsets = offsets
        self._job = job
        self._input_topics = frozenset(input_topics)
        # Exported at 0 from the start: a rate over a series born at its first failure
        # would miss that failure.
        self._failed = metrics.lag_reads_failed.labels(job)
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self.gauge = PartitionSeries(
            metrics.consumer_lag, lambda tp: (job, tp.topic, str(tp.partition))
        )

    @Service.task
    async def _measure_every_interval(self) -> None:
        while not self.should_stop:
            await self.measure()
            await self.sleep(self._interval_s)

    async def on_shutdown(self) -> None:
        """After the task has stopped (on_stop would close the readers under a round)."""
        self.gauge.forget(set(self.gauge.reported))
        await self._offsets.close()

    async def measure(self) -> None:
        """One round; a failure is logged, counted, and leaves the gauge as it was."""
        assigned = assigned_inputs(self._app, self._input_topics)
        self.gauge.forget(self.gauge.reported - assigned)
        if not assigned:
            return
        partitions = sorted(assigned)
        try:
            async with asyncio.timeout(self._timeout_s):
                # Committed first, ends second: the job keeps committing meanwhile, and an end
                # read before a later commit could show less than nothing.
                committed = await self._offsets.committed(partitions)
                ends = await self._offsets.ends(partitions)
        except READ_ERRORS as exc:
            log.warning(
                "stream.lag_read_failed",
                job=self._job,
                error_class=type(exc).__name__,
                error=str(exc) or type(exc).__name__,
                retry_in_s=self._interval_s,
            )
            await self._round_failed()
            return
        except Exception:  # a bug here must cost the metric, never the job
            log.exception("stream.lag_read_failed_unexpectedly", job=self._job)
            await self._round_failed()
            return
        # A rebalance may have moved partitions during the reads: report only those still ours.
        still_assigned = assigned_inputs(self._app, self._input_topics)
        self.gauge.forget(self.gauge.reported - still_assigned)
        for tp in partitions:
            if tp in still_assigned:
                self.gauge.set(tp, lag_of(committed[tp], ends[tp]))

    async def _round_failed(self) -> None:
        """Count it; drop the readers, which may be half-way through a request."""
        self._failed.inc()
        await self._offsets.close()
