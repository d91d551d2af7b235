"""Step 8 of the consume loop: the next offsets of settled batches, committed together.

A settled batch's offsets are staged here; a commit sends everything staged so far, at most
every `commit_interval_ms` (the loop also commits when it finds nothing new to poll, before
partitions are revoked, and at stop). A commit only ever covers settled batches; a crash
before it replays them, and dedup turns the replay into duplicates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import structlog
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from workers.errors import DependencyUnavailableError
from workers.runtime.records import InboundRecord

log = structlog.get_logger(__name__)


class StagedOffsets:
    """The offsets one consumer may commit: those of batches whose effects are durable."""

    def __init__(self, consumer: Any, *, interval_ms: int, processor: str) -> None:
        self._consumer = consumer
        self._interval_s = interval_ms / 1000
        self._processor = processor
        self._staged: dict[TopicPartition, int] = {}
        self._due_at = 0.0
        self._committing = asyncio.Lock()

    @property
    def due(self) -> bool:
        """Whether the commit interval has passed since the last commit."""
        return time.monotonic() >= self._due_at

    def stage(self, records: Sequence[InboundRecord]) -> None:
        """Stage the next offset of every partition of a settled batch."""
        # A partition's records come in offset order: the last one seen is its highest.
        last = {(record.topic, record.partition): record.offset for record in records}
        staged = self._staged
        for (topic, partition), offset in last.items():
            tp = TopicPartition(topic, partition)
            staged[tp] = max(staged.get(tp, 0), offset + 1)

    async def commit(self) -> None:
        """Commit everything staged so far (one commit at a time: a later commit never goes
        out before an earlier one). DependencyUnavailableError when the broker is unreachable;
        the offsets then stay staged for the next commit."""
        async with self._committing:
            if not self._staged:
                return
            offsets, self._staged = self._staged, {}
            try:
                await self._consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as exc:
                # The partitions moved on; their new owner polls these records again, and
                # dedup turns the repeat into duplicates.
                log.warning(
                    "commit refused after a rebalance", processor=self._processor, error=str(exc)
                )
            except KafkaError as exc:
                # Keep the offsets for the next commit (their batches are done); the batch
                # that tried is polled again (duplicates).
                for tp, offset in offsets.items():
                    self._staged[tp] = max(self._staged.get(tp, 0), offset)
                raise DependencyUnavailableError(f"kafka: {exc}") from exc
            self._due_at = time.monotonic() + self._interval_s
