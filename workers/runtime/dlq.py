"""Reading and replaying a group's dead letters (`liveops dlq list|show|replay`).

Replay progress is a consumer group of its own, `<group>.dlq-replay`: its committed offset on
each dead-letter partition marks what was already republished, so a replay is never repeated
and `show` lists what is still pending. The reader assigns partitions itself (it never joins
the group) and stops at the end offsets read when it started (true ends, topics/offsets.py:
the embedded broker's own answer falls short and a replay would miss dead letters).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.codec import decode, validate
from schemas.errors import ContractError, LiveopsError
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import ConsumerGroup
from topics.offsets import EndOffsetReader
from topics.settings import KafkaSettings
from workers.runtime import headers
from workers.runtime.outbox import Outbox
from workers.runtime.records import InboundRecord, OutboundRecord

_POLL_MS = 500


class ReplayRefusedError(LiveopsError):
    """A dead letter names an original topic that is not an input of its group."""


@dataclass(frozen=True)
class PartitionState:
    partition: int
    beginning: int
    end: int
    replayed_up_to: int

    @property
    def total(self) -> int:
        return self.end - self.beginning

    @property
    def pending(self) -> int:
        return max(0, self.end - max(self.replayed_up_to, self.beginning))


def replay_group_id(group: ConsumerGroup) -> str:
    return f"{group.name}.dlq-replay"


def decoded(record: InboundRecord) -> Envelope | None:
    """The dead letter's envelope, or None when it is garbage (that may be why it is here)."""
    try:
        return validate(decode(record.value))
    except ContractError:
        return None


class DeadLetterReader:
    """`async with DeadLetterReader(kafka, group) as reader`: state, pending records, commit."""

    def __init__(self, kafka: KafkaSettings, group: ConsumerGroup) -> None:
        self._group = group
        self._topic = group.dead_letter
        self._partitions = [
            TopicPartition(self._topic.name, p) for p in range(self._topic.partitions)
        ]
        self._consumer: Any = AIOKafkaConsumer(
            **kafka.client_kwargs(),
            group_id=replay_group_id(group),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        self._end_offsets = EndOffsetReader(kafka)

    async def state(self) -> list[PartitionState]:
        beginnings = await self._consumer.beginning_offsets(self._partitions)
        ends = await self._end_offsets.read(self._partitions)
        states = []
        for tp in self._partitions:
            committed = await self._consumer.committed(tp)
            states.append(
                PartitionState(tp.partition, beginnings[tp], ends[tp], committed or beginnings[tp])
            )
        return states

    async def pending(self, max_records: int) -> list[InboundRecord]:
        """Up to `max_records` dead letters not yet replayed, partition by partition."""
        records: list[InboundRecord] = []
        for state in await self.state():
            if len(records) >= max_records or not state.pending:
                continue
            tp = self._partitions[state.partition]
            self._consumer.assign([tp])
            self._consumer.seek(tp, max(state.replayed_up_to, state.beginning))
            end = state.end
            while len(records) < max_records:
                polled = await self._consumer.getmany(tp, timeout_ms=_POLL_MS)
                # The high watermark of this very fetch: if the end read before was short,
                # dead letters past it are still replayed, not left behind.
                end = max(end, self._consumer.highwater(tp) or 0)
                batch = [InboundRecord.from_consumer(r) for r in polled.get(tp, [])]
                records += [r for r in batch if r.offset < end][: max_records - len(records)]
                if not batch or batch[-1].offset + 1 >= end:
                    break
        return records

    async def mark_replayed(self, records: list[InboundRecord]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
        if offsets:
            self._consumer.assign(list(offsets))
            await self._consumer.commit(offsets)

    async def __aenter__(self) -> DeadLetterReader:
        await self._consumer.start()
        try:
            await self._end_offsets.start()
        except BaseException:
            await self._consumer.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._end_offsets.stop()
        finally:
            await self._consumer.stop()


def replay_record(group: ConsumerGroup, record: InboundRecord) -> OutboundRecord:
    """The record to republish: same key and value, to the original input topic."""
    original = record.header(headers.ORIGINAL_TOPIC)
    inputs = {topic.name for topic in group.inputs}
    if original not in inputs:
        raise ReplayRefusedError(
            f"dead letter {record.partition}/{record.offset} came from {original!r}, "
            f"not an input of {group.name}"
        )
    now_ms = int(time.time() * 1000)
    return OutboundRecord(
        original, record.key, record.value, headers.replay_headers(record, now_ms=now_ms)
    )


async def replay(
    kafka: KafkaSettings, group: ConsumerGroup, *, max_records: int, dry_run: bool = False
) -> list[InboundRecord]:
    """Republish up to `max_records` pending dead letters, then commit them as replayed.

    All or nothing per call: every record is checked before anything is sent, and offsets are
    committed only after every republished record is acknowledged. A replay interrupted
    between the two is repeated next time: harmless, the workers deduplicate.
    """
    async with DeadLetterReader(kafka, group) as reader:
        records = await reader.pending(max_records)
        outgoing = [replay_record(group, record) for record in records]
        if dry_run or not records:
            return records
        async with Outbox(kafka) as outbox:
            await outbox.send_all(outgoing)
        await reader.mark_replayed(records)
        return records
