"""The retry loop: the consume loop on a group's retry tiers, releasing records when due.

A record in tier k is due at its `liveops-due-at` header (else record timestamp + tier delay).
Records of one tier partition are in due order (same delay, appended in time order), so the
first record not yet due holds back its partition only: the loop seeks back to it and pauses
that partition until then, while every other partition keeps flowing. Due records go through
the same pipeline as input records; failing again sends them to tier k+1, after the last tier
to the dead letters. Consumer group: `<group>.retry`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition

from workers.errors import DependencyUnavailableError
from workers.runtime import headers
from workers.runtime.loop import ConsumerLoop
from workers.runtime.records import InboundRecord


def due_at_ms(record: InboundRecord, tier_delay_s: int) -> int:
    value = record.header(headers.DUE_AT)
    if value and value.isdigit():
        return int(value)
    return record.timestamp_ms + tier_delay_s * 1000


class RetryLoop(ConsumerLoop):
    """ConsumerLoop whose batches hold only due records; the rest wait, paused.

    Not pipelined: `_select` seeks and pauses partitions, which must not happen while an
    earlier batch of them is still settling; retries are a trickle, not the hot path.
    """

    may_overlap = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resume_at_ms: dict[TopicPartition, int] = {}

    def _delays(self) -> dict[str, int]:
        return {tier.topic.name: tier.delay_s for tier in self.pipeline.processor.group.retry_tiers}

    def _before_poll(self) -> None:
        now_ms = int(time.time() * 1000)
        assigned = self.consumer.assignment()
        for tp, resume_ms in list(self._resume_at_ms.items()):
            if tp not in assigned:
                del self._resume_at_ms[tp]  # moved to another worker by a rebalance
            elif resume_ms <= now_ms:
                self.consumer.resume(tp)
                del self._resume_at_ms[tp]
        self.progress.waiting = len(self._resume_at_ms)

    async def _hold_position(
        self,
        records: Sequence[InboundRecord],
        exc: DependencyUnavailableError,
        stop: asyncio.Event,
    ) -> None:
        # The batch is polled again from its start, due records included: a partition paused
        # for a later record would otherwise hold its due ones back until then.
        assigned = self.consumer.assignment()
        for tp in list(self._resume_at_ms):
            if tp in assigned:
                self.consumer.resume(tp)
        self._resume_at_ms.clear()
        await super()._hold_position(records, exc, stop)

    def _select(self, records: list[InboundRecord]) -> list[InboundRecord]:
        delays = self._delays()
        now_ms = int(time.time() * 1000)
        due: list[InboundRecord] = []
        held: set[TopicPartition] = set()
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            if tp in held:
                continue
            record_due_ms = due_at_ms(record, delays.get(record.topic, 0))
            if record_due_ms <= now_ms:
                due.append(record)
                continue
            held.add(tp)
            self.consumer.seek(tp, record.offset)
            self.consumer.pause(tp)
            self._resume_at_ms[tp] = record_due_ms
        self.progress.waiting = len(self._resume_at_ms)
        return due
