"""`liveops topics lag` against the real embedded broker: exact committed, end and lag per
partition of a test-only group, the command's JSON lines, and a catalog group read as is.

Each test works on a group and topics of its own (unique_name): the session broker is shared
with tests that run workers on the catalog's groups.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from test_end_offsets_live import send_batch  # a module beside this one
from typer.testing import CliRunner

from topics import catalog
from topics.admin import apply_plan
from topics.catalog import IAP_GROUP, PLAYER_ACTIONS, ConsumerGroup, Topic
from topics.cli import topics_app
from topics.lag import GroupLag, PartitionLag, read_lag, targets_of
from topics.settings import KafkaSettings

pytestmark = pytest.mark.integration

#: Records per partition of the input topic (5 + 4 + 2 = 11), and of the one retry topic.
INPUT_COUNTS = (5, 4, 2)
RETRY_COUNTS = (3, 0)


async def our_group(settings: KafkaSettings, unique_name: str) -> ConsumerGroup:
    """A group of the test's own, one input topic of 3 partitions and one retry tier of 2,
    created on the broker with its companions."""
    topic = replace(
        PLAYER_ACTIONS, name=f"{unique_name}.{PLAYER_ACTIONS.name}", partitions=len(INPUT_COUNTS)
    )
    group = ConsumerGroup(
        unique_name, (topic,), retry_delays_s=(10,), retry_partitions=len(RETRY_COUNTS)
    )
    await apply_plan(settings, (topic, *group.companions()))
    return group


async def publish(settings: KafkaSettings, topic: Topic, counts: Sequence[int]) -> None:
    """`counts[p]` records on partition p, sent together: they share batches, and the end
    offsets must still count each record."""
    await send_batch(settings, topic, [p for p, count in enumerate(counts) for _ in range(count)])


async def commit(
    settings: KafkaSettings, group_id: str, offsets: dict[TopicPartition, int]
) -> None:
    """Commit `offsets` for `group_id` as a worker would, from a plain assigned consumer."""
    consumer = AIOKafkaConsumer(
        **settings.client_kwargs(), group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def prepared_group(settings: KafkaSettings, unique_name: str) -> ConsumerGroup:
    """Given: records on every partition but the last retry one; the input group committed
    on partitions 0 and 1 (not 2), the retry group on partition 0 (not 1)."""
    group = await our_group(settings, unique_name)
    (topic,) = group.inputs
    retry_topic = group.retry_tiers[0].topic
    await publish(settings, topic, INPUT_COUNTS)
    await publish(settings, retry_topic, RETRY_COUNTS)
    await commit(
        settings,
        group.name,
        {TopicPartition(topic.name, 0): 3, TopicPartition(topic.name, 1): 4},
    )
    await commit(settings, f"{group.name}.retry", {TopicPartition(retry_topic.name, 0): 1})
    return group


async def test_lag_per_partition_of_the_input_and_retry_groups(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    # Given the prepared group
    group = await prepared_group(kafka_settings, unique_name)
    topic = group.inputs[0].name
    retry_topic = group.retry_tiers[0].topic.name

    # When its lag is read (twice: reading must commit nothing)
    found = await read_lag(kafka_settings, targets_of([group]))
    again = await read_lag(kafka_settings, targets_of([group]))

    # Then each partition shows its commit (None where there is none), its true end, the lag
    assert found == [
        GroupLag(
            unique_name,
            group.name,
            (
                PartitionLag(topic, 0, 3, 5),
                PartitionLag(topic, 1, 4, 4),
                PartitionLag(topic, 2, None, 2),
            ),
        ),
        GroupLag(
            f"{unique_name}.retry",
            f"{group.name}.retry",
            (PartitionLag(retry_topic, 0, 1, 3), PartitionLag(retry_topic, 1, None, 0)),
        ),
    ]
    assert [[p.lag for p in g.partitions] for g in found] == [[2, 0, 2], [2, 0]]
    assert [g.total for g in found] == [4, 2]
    assert again == found


def test_lag_command_prints_one_json_line_per_partition(
    kafka_settings: KafkaSettings, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sync on purpose: the command runs its own event loop, as it does from a shell.
    group = asyncio.run(prepared_group(kafka_settings, unique_name))
    # The command maps names to catalog groups: this test's group joins the catalog.
    monkeypatch.setattr(catalog, "CONSUMER_GROUPS", (*catalog.CONSUMER_GROUPS, group))

    class Settings:
        kafka = kafka_settings

    result = CliRunner().invoke(topics_app, ["lag", unique_name, "--json"], obj=Settings())

    assert result.exit_code == 0, result.output
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    topic = group.inputs[0].name
    retry_topic = group.retry_tiers[0].topic.name
    retry = f"{unique_name}.retry"
    fields = ["group", "topic", "partition", "committed", "end", "lag"]
    assert all(list(doc) == fields for doc in docs)
    assert [tuple(doc.values()) for doc in docs] == [
        (unique_name, topic, 0, 3, 5, 2),
        (unique_name, topic, 1, 4, 4, 0),
        (unique_name, topic, 2, None, 2, 2),
        (retry, retry_topic, 0, 1, 3, 2),
        (retry, retry_topic, 1, None, 0, 0),
    ]


def test_lag_command_reads_a_catalog_group_and_its_retry_tiers(
    kafka_settings: KafkaSettings,
) -> None:
    # Other tests may run iap workers on the session broker: only the shape is certain.
    class Settings:
        kafka = kafka_settings

    result = CliRunner().invoke(topics_app, ["lag", "iap"], obj=Settings())

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"]
    rows = [line.split() for line in lines[1:] if line.startswith("iap")]
    inputs = [row for row in rows if row[0] == "iap" and row[1] != "total"]
    retries = [row for row in rows if row[0] == "iap.retry" and row[1] != "total"]
    assert len(inputs) == IAP_GROUP.inputs[0].partitions
    assert {row[1] for row in retries} == {tier.topic.name for tier in IAP_GROUP.retry_tiers}
    assert len(retries) == sum(tier.topic.partitions for tier in IAP_GROUP.retry_tiers)
    for _, _, _, committed, end, lag in inputs + retries:
        assert int(lag) == int(end) - (0 if committed == "-" else int(committed))
    totals = [row for row in rows if row[1] == "total"]
    assert [(row[0], int(row[2])) for row in totals] == [
        ("iap", sum(int(row[5]) for row in inputs)),
        ("iap.retry", sum(int(row[5]) for row in retries)),
    ]
