"""Plan and apply against the real embedded broker (Tansu).

Each test works on a copy of the catalog renamed under its unique name: the session broker is
shared with other tests, which may produce to (and so auto-create) the real catalog topics.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from aiokafka.admin import NewTopic
from typer.testing import CliRunner

from topics.admin import (
    Action,
    ApplyStatus,
    ConfigDifference,
    ConfigDrift,
    ExtraPartitions,
    RaisePartitions,
    UnknownTopic,
    admin_client,
    apply_plan,
    compute_plan,
    execute_plan,
    read_cluster,
    read_plan,
)
from topics.catalog import ALL_TOPICS, DAY_MS, Topic
from topics.cli import topics_app
from topics.settings import KafkaSettings

pytestmark = pytest.mark.integration


def name_of(action: Action) -> str:
    return action.name if isinstance(action, UnknownTopic) else action.topic.name


def namespaced(prefix: str, topics: tuple[Topic, ...] = ALL_TOPICS) -> tuple[Topic, ...]:
    return tuple(replace(topic, name=f"{prefix}.{topic.name}") for topic in topics)


async def test_apply_creates_every_catalog_topic_and_applying_again_changes_nothing(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    catalog = namespaced(unique_name)
    names = {topic.name for topic in catalog}

    # When the whole catalog is applied to a cluster that has none of it
    first = await apply_plan(kafka_settings, catalog)

    # Then every topic is created with the catalog's partitions and configs
    ours = [r for r in first if name_of(r.action) in names]
    assert len(ours) == len(catalog)
    assert {r.status for r in ours} == {ApplyStatus.DONE}
    async with admin_client(kafka_settings) as admin:
        cluster = await read_cluster(admin)
    for topic in catalog:
        assert cluster[topic.name].partitions == topic.partitions
        assert cluster[topic.name].configs == topic.config()

    # And the next plan has nothing for them, so a second apply does nothing to them
    second_plan = await read_plan(kafka_settings, catalog)
    assert not [action for action in second_plan if name_of(action) in names]
    second = await apply_plan(kafka_settings, catalog)
    assert not [r for r in second if name_of(r.action) in names]
    assert {r.status for r in second} <= {ApplyStatus.REPORTED}  # other tests' topics


async def test_drift_is_reported_and_what_tansu_cannot_fix_is_unfixable_not_a_crash(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    # Given topics that differ from a catalog, and one the catalog does not know
    few = Topic(f"{unique_name}.few.v1", 6, 7 * DAY_MS, "test", "fewer partitions, old retention")
    many = Topic(f"{unique_name}.many.v1", 6, 7 * DAY_MS, "test", "more partitions")
    stray = f"{unique_name}.stray.v1"
    async with admin_client(kafka_settings) as admin:
        response = await admin.create_topics(
            [
                NewTopic(few.name, 2, 1, topic_configs={**few.config(), "retention.ms": "1000"}),
                NewTopic(many.name, 9, 1, topic_configs=many.config()),
                NewTopic(stray, 1, 1),
            ]
        )
    assert [code for _, code, _ in response.topic_errors] == [0, 0, 0]

    # When we plan, then apply
    plan = await read_plan(kafka_settings, (few, many))
    results = await apply_plan(kafka_settings, (few, many))

    # Then the plan names each drift
    assert RaisePartitions(few, 2) in plan
    assert ConfigDrift(few, (ConfigDifference("retention.ms", "1000", str(7 * DAY_MS)),)) in plan
    assert ExtraPartitions(many, 9) in plan
    assert UnknownTopic(stray, 1) in plan
    # And apply reports what the broker cannot do instead of crashing, and changes nothing
    details = {r.action.describe(): (r.status, r.detail) for r in results}
    assert details[RaisePartitions(few, 2).describe()] == (
        ApplyStatus.UNFIXABLE,
        "broker does not support raising partitions",
    )
    drift = next(a for a in plan if isinstance(a, ConfigDrift))
    assert details[drift.describe()] == (
        ApplyStatus.UNFIXABLE,
        "broker does not support altering topic configs",
    )
    assert details[ExtraPartitions(many, 9).describe()][0] is ApplyStatus.REPORTED
    assert details[UnknownTopic(stray, 1).describe()][0] is ApplyStatus.REPORTED
    async with admin_client(kafka_settings) as admin:
        cluster = await read_cluster(admin)
    assert (cluster[few.name].partitions, cluster[many.name].partitions) == (2, 9)
    assert cluster[few.name].configs["retention.ms"] == "1000"
    assert stray in cluster  # never deleted


async def test_a_topic_created_between_plan_and_apply_counts_as_done(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    [topic] = namespaced(unique_name, ALL_TOPICS[:1])
    stale_plan = compute_plan((topic,), {}, kafka_settings.replication_factor)

    async with admin_client(kafka_settings) as admin:
        # Someone else creates it after our plan was computed
        await admin.create_topics([NewTopic(topic.name, topic.partitions, 1)])
        [result] = await execute_plan(admin, stale_plan)

    assert result.status is ApplyStatus.ALREADY_DONE


async def create_topic(settings: KafkaSettings, name: str, partitions: int) -> None:
    async with admin_client(settings) as admin:
        await admin.create_topics([NewTopic(name, partitions, 1)])


def test_plan_command_prints_the_diff_and_exits_0(
    kafka_settings: KafkaSettings, unique_name: str
) -> None:
    # Sync on purpose: the command runs its own event loop, as it does from a shell.
    stray = f"{unique_name}.stray.v1"
    asyncio.run(create_topic(kafka_settings, stray, 2))

    class Settings:
        kafka = kafka_settings

    result = CliRunner().invoke(topics_app, ["plan"], obj=Settings())

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"plan for {kafka_settings.bootstrap_servers}:")
    assert f"  ? not in catalog: {stray} (2 partition(s); left alone)" in result.stdout
