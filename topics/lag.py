"""How far each consumer group is behind, per partition: `liveops topics lag`.

A processor reads with two Kafka groups (workers/runtime/worker.py): `<group>` on its inputs and
`<group>.retry` on its retry tier topics. For each, per partition: the committed offset, the end
offset and the lag between them, so one stuck partition (a poison event, a stuck worker) stands
out from a whole fleet that is too slow (every partition behind).

Read-only: committed offsets come from CommittedOffsetReader, a consumer that carries the
group's id but never subscribes, so it never joins the group and never triggers a rebalance of
the live workers; it commits nothing. End offsets come from EndOffsetReader (the embedded
broker's ListOffsets answer falls short of the end).

read_lag takes LagTarget values: targets_of gives a processor's two, and a reader above topics/
builds its own (`liveops stream lag` for the velocity job's faust group).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError

from topics.admin import BrokerUnreachableError
from topics.catalog import ConsumerGroup, Topic
from topics.offsets import CommittedOffsetReader, EndOffsetReader, EndOffsetsUnconfirmedError
from topics.settings import KafkaSettings
from topics.tail import TopicNotOnClusterError

#: The committed column of a partition the group never committed on.
NOT_COMMITTED = "-"
LEGEND = (
    f'committed "{NOT_COMMITTED}": the group never committed on that partition; '
    "everything in it waits, so lag = end offset"
)


def lag_of(committed: int | None, end: int) -> int:
    """Records waiting: end - committed, or the end offset when nothing was ever committed.

    Never below 0 (a committed offset past the end means the topic was recreated), as the
    `liveops_consumer_lag` metric counts it.
    """
    if committed is None:
        return end
    return max(0, end - committed)


@dataclass(frozen=True)
class PartitionLag:
    """One partition of one group: where it committed, where the partition ends."""

    topic: str
    partition: int
    #: None when the group never committed on this partition.
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return lag_of(self.committed, self.end)


@dataclass(frozen=True)
class GroupLag:
    """One Kafka group's partitions, labelled as the SRE knows it: `rewards`, `rewards.retry`."""

    label: str
    group_id: str
    partitions: tuple[PartitionLag, ...]

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)


@dataclass(frozen=True)
class LagTarget:
    """One Kafka group to read and the topics it consumes, under the label the SRE knows it by."""

    label: str
    group_id: str
    topics: tuple[Topic, ...]


def targets_of(groups: Iterable[ConsumerGroup]) -> list[LagTarget]:
    """The Kafka groups a processor's worker reads with, as worker._build_loops creates them:
    `<group>` on its inputs, then `<group>.retry` on its retry tiers (when it has any)."""
    targets = []
    for group in groups:
        targets.append(LagTarget(group.processor, group.name, group.inputs))
        if group.retry_tiers:
            targets.append(
                LagTarget(
                    f"{group.processor}.retry",
                    group.retry_group,
                    tuple(tier.topic for tier in group.retry_tiers),
                )
            )
    return targets


def groups_named(names: Sequence[str], known: Sequence[ConsumerGroup]) -> tuple[ConsumerGroup, ...]:
    """The groups called `names` (`rewards` or `liveops.rewards`), in order, each once; all of
    `known` when `names` is empty. KeyError names the known ones when a name is not there."""
    if not names:
        return tuple(known)
    by_name = {group.processor: group for group in known}
    found: dict[str, ConsumerGroup] = {}
    for name in names:
        processor = name.removeprefix("liveops.")
        if processor not in by_name:
            raise KeyError(
                f"no consumer group {name!r}; known: {', '.join(g.processor for g in known)}"
            )
        found[processor] = by_name[processor]
    return tuple(found.values())


async def read_lag(settings: KafkaSettings, targets: Sequence[LagTarget]) -> list[GroupLag]:
    """Committed offset, end offset and lag of every partition of each target, in the order
    given (topics in the target's order, partitions ascending).

    Raises BrokerUnreachableError when the cluster does not answer, TopicNotOnClusterError when
    one of the targets' topics is missing there.
    """
    ends = EndOffsetReader(settings)
    try:
        try:
            await ends.start()
        except KafkaConnectionError as exc:
            raise _unreachable(settings, exc) from exc
        return [await _read_target(settings, ends, target) for target in targets]
    finally:
        await ends.stop()


async def _read_target(
    settings: KafkaSettings, ends: EndOffsetReader, target: LagTarget
) -> GroupLag:
    committed_offsets = CommittedOffsetReader(settings, target.group_id)
    try:
        try:
            await committed_offsets.start()
            numbers = await committed_offsets.partitions_of(t.name for t in target.topics)
        except KafkaConnectionError as exc:
            raise _unreachable(settings, exc) from exc
        partitions = _partitions(numbers, target.topics)
        try:
            # Committed first, ends second: the workers keep committing meanwhile, and an end
            # read before a later commit could show a negative lag.
            committed = await committed_offsets.read(partitions)
            end_offsets = await ends.read(partitions)
        except (KafkaError, EndOffsetsUnconfirmedError) as exc:
            raise BrokerUnreachableError(
                f"cannot read the offsets of group {target.group_id}: {exc}"
            ) from exc
    finally:
        await committed_offsets.stop()
    rows = tuple(
        PartitionLag(tp.topic, tp.partition, committed[tp], end_offsets[tp]) for tp in partitions
    )
    return GroupLag(target.label, target.group_id, rows)


def _partitions(numbers: dict[str, list[int]], topics: Sequence[Topic]) -> list[TopicPartition]:
    partitions = []
    for topic in topics:
        if not numbers[topic.name]:
            raise TopicNotOnClusterError(
                f"{topic.name} is in the catalog but not on the cluster "
                "(create it with `liveops topics apply`)"
            )
        partitions += [TopicPartition(topic.name, number) for number in numbers[topic.name]]
    return partitions


def _unreachable(settings: KafkaSettings, exc: Exception) -> BrokerUnreachableError:
    return BrokerUnreachableError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}")


def render_table(groups: Sequence[GroupLag]) -> list[str]:
    """Aligned rows (group, topic, partition, committed, end, lag), each group followed by its
    total line; the legend last when some partition was never committed."""
    header = ("GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG")
    rows: list[tuple[str, ...]] = []
    for group in groups:
        for p in group.partitions:
            committed = NOT_COMMITTED if p.committed is None else str(p.committed)
            rows.append((group.label, p.topic, str(p.partition), committed, str(p.end), str(p.lag)))
        rows.append((group.label, "total", "", "", "", str(group.total)))
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        left = [cell.ljust(width) for cell, width in zip(row[:2], widths[:2], strict=True)]
        right = [cell.rjust(width) for cell, width in zip(row[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    lines = [line(header), *(line(row) for row in rows)]
    if any(p.committed is None for group in groups for p in group.partitions):
        lines.append(LEGEND)
    return lines


def render_json(groups: Sequence[GroupLag]) -> list[str]:
    """One JSON object per partition (group, topic, partition, committed or null, end, lag)."""
    return [
        json.dumps(
            {
                "group": group.label,
                "topic": p.topic,
                "partition": p.partition,
                "committed": p.committed,
                "end": p.end,
                "lag": p.lag,
            }
        )
        for group in groups
        for p in group.partitions
    ]
