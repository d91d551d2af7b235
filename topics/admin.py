"""Compare the topic catalog with a cluster, and make the cluster match where that is safe.

`compute_plan` (pure) turns catalog and cluster state into typed actions; `execute_plan`:
1. creates missing topics (catalog partitions and configs, replication from KafkaSettings);
   a topic created meanwhile by someone else (TopicAlreadyExists) counts as done;
2. raises partitions below the catalog's; a broker without CreatePartitions (Tansu) makes
   that unfixable drift, reported, not a crash;
3. sets differing managed configs (retention, cleanup) with AlterConfigs if the broker allows;
4. only reports more partitions than the catalog (never shrunk: keys would move) and topics
   not in the catalog (never deleted).
Applying twice changes nothing the second time: the second plan is empty for fixed topics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    IncompatibleBrokerVersion,
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)

from schemas.errors import LiveopsError
from topics.catalog import ALL_TOPICS, Topic
from topics.settings import KafkaSettings

#: DescribeConfigs source of a value set on the topic itself (Kafka's TOPIC_CONFIG).
_SOURCE_TOPIC_CONFIG = 1


class BrokerUnreachableError(LiveopsError):
    """No broker answered at the bootstrap servers (or the connection dropped mid-way)."""

    retriable = True


@dataclass(frozen=True)
class ClusterTopic:
    """What the cluster says about one topic."""

    name: str
    partitions: int
    #: Every config the broker reported with a value (topic-level or default).
    configs: Mapping[str, str] = field(default_factory=dict)
    #: Configs set on the topic itself; AlterConfigs replaces them all, so we resend them.
    overrides: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CreateTopic:
    """The topic is in the catalog but not on the cluster."""

    topic: Topic
    replication_factor: int
    changes_cluster: ClassVar[bool] = True

    def describe(self) -> str:
        configs = ", ".join(f"{k}={v}" for k, v in sorted(self.topic.config().items()))
        return (
            f"create {self.topic.name}: {self.topic.partitions} partitions, "
            f"replication {self.replication_factor}, {configs}"
        )


@dataclass(frozen=True)
class RaisePartitions:
    """The cluster has fewer partitions than the catalog."""

    topic: Topic
    current: int
    changes_cluster: ClassVar[bool] = True

    def describe(self) -> str:
        return f"raise {self.topic.name} partitions {self.current} -> {self.topic.partitions}"


@dataclass(frozen=True)
class ConfigDifference:
    key: str
    #: None when the broker reports no value for it (a broker default we cannot see).
    cluster_value: str | None
    catalog_value: str


@dataclass(frozen=True)
class ConfigDrift:
    """Managed configs differ; apply sets them with AlterConfigs if the broker allows."""

    topic: Topic
    differences: tuple[ConfigDifference, ...]
    #: Other topic-level configs to resend unchanged (AlterConfigs is all-or-nothing).
    keep: Mapping[str, str] = field(default_factory=dict)
    changes_cluster: ClassVar[bool] = True

    def describe(self) -> str:
        diffs = ", ".join(
            f"{d.key} {d.cluster_value or '(unset)'} -> {d.catalog_value}" for d in self.differences
        )
        return f"set {self.topic.name} configs: {diffs}"


@dataclass(frozen=True)
class ExtraPartitions:
    """The cluster has more partitions than the catalog: drift, never shrunk."""

    topic: Topic
    current: int
    changes_cluster: ClassVar[bool] = False

    def describe(self) -> str:
        return (
            f"drift {self.topic.name}: {self.current} partitions, catalog says "
            f"{self.topic.partitions} (never shrunk: update the catalog)"
        )


@dataclass(frozen=True)
class UnknownTopic:
    """On the cluster, not in the catalog: reported, never deleted."""

    name: str
    partitions: int
    changes_cluster: ClassVar[bool] = False

    def describe(self) -> str:
        return f"not in catalog: {self.name} ({self.partitions} partition(s); left alone)"


Action = CreateTopic | RaisePartitions | ConfigDrift | ExtraPartitions | UnknownTopic


def compute_plan(
    catalog: Sequence[Topic], cluster: Mapping[str, ClusterTopic], replication_factor: int
) -> list[Action]:
    """What it takes to make the cluster match the catalog. Pure: no I/O."""
    plan: list[Action] = []
    for topic in catalog:
        found = cluster.get(topic.name)
        if found is None:
            plan.append(CreateTopic(topic, replication_factor))
            continue
        if found.partitions < topic.partitions:
            plan.append(RaisePartitions(topic, found.partitions))
        elif found.partitions > topic.partitions:
            plan.append(ExtraPartitions(topic, found.partitions))
        wanted = topic.config()
        differences = tuple(
            ConfigDifference(key, found.configs.get(key), value)
            for key, value in sorted(wanted.items())
            if found.configs.get(key) != value
        )
        if differences:
            keep = {k: v for k, v in found.overrides.items() if k not in wanted}
            plan.append(ConfigDrift(topic, differences, keep))
    known = {topic.name for topic in catalog}
    plan.extend(
        UnknownTopic(name, cluster[name].partitions)
        for name in sorted(cluster)
        if name not in known
    )
    return plan


class ApplyStatus(StrEnum):
    DONE = "done"
    #: Someone else did it between our plan and our request (TopicAlreadyExists).
    ALREADY_DONE = "already done"
    #: Drift we cannot fix on this broker; reported, not an error.
    UNFIXABLE = "unfixable"
    #: A report-only action (extra partitions, unknown topic).
    REPORTED = "reported"
    FAILED = "failed"


@dataclass(frozen=True)
class ActionResult:
    action: Action
    status: ApplyStatus
    detail: str = ""

    def describe(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"[{self.status}] {self.action.describe()}{detail}"


@asynccontextmanager
async def admin_client(settings: KafkaSettings) -> AsyncIterator[Any]:
    """A started AIOKafkaAdminClient; connection failures become BrokerUnreachableError."""
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    try:
        await admin.start()
        yield admin
    except KafkaConnectionError as exc:
        raise BrokerUnreachableError(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}"
        ) from exc
    finally:
        await admin.close()


async def read_cluster(admin: Any) -> dict[str, ClusterTopic]:
    """Every non-internal topic with its partition count and configs."""
    described = await admin.describe_topics()
    partitions = {
        meta["topic"]: len(meta["partitions"])
        for meta in described
        # "__" topics belong to the broker (offsets, transactions) even when not flagged internal.
        if meta["error_code"] == 0
        and not meta["is_internal"]
        and not meta["topic"].startswith("__")
    }
    configs: dict[str, dict[str, str]] = {name: {} for name in partitions}
    overrides: dict[str, dict[str, str]] = {name: {} for name in partitions}
    if partitions:
        # Unfiltered on purpose: Tansu drops the connection on a DescribeConfigs naming keys.
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in partitions]
        for response in await admin.describe_configs(resources):
            for resource in response.to_object()["resources"]:
                name = resource["resource_name"]
                if resource["error_code"] != 0 or name not in configs:
                    continue
                for entry in resource["config_entries"]:
                    value = entry["config_value"]
                    if value is None:
                        continue
                    configs[name][entry["config_names"]] = value
                    if entry.get("config_source") == _SOURCE_TOPIC_CONFIG:
                        overrides[name][entry["config_names"]] = value
    return {
        name: ClusterTopic(name, count, configs[name], overrides[name])
        for name, count in partitions.items()
    }


async def read_plan(settings: KafkaSettings, catalog: Sequence[Topic] = ALL_TOPICS) -> list[Action]:
    """The plan for this cluster; raises BrokerUnreachableError."""
    async with admin_client(settings) as admin:
        cluster = await read_cluster(admin)
    return compute_plan(catalog, cluster, settings.replication_factor)


async def apply_plan(
    settings: KafkaSettings, catalog: Sequence[Topic] = ALL_TOPICS
) -> list[ActionResult]:
    """Read the cluster, compute the plan and carry out what is safe. Never deletes."""
    async with admin_client(settings) as admin:
        plan = compute_plan(catalog, await read_cluster(admin), settings.replication_factor)
        return await execute_plan(admin, plan)


async def execute_plan(admin: Any, plan: Sequence[Action]) -> list[ActionResult]:
    """Carry out a plan, one result per action. The plan may be stale: races count as done."""
    creates = [a for a in plan if isinstance(a, CreateTopic)]
    results = await _create_topics(admin, creates) if creates else []
    for action in plan:
        if isinstance(action, RaisePartitions):
            results.append(await _raise_partitions(admin, action))
        elif isinstance(action, ConfigDrift):
            results.append(await _alter_configs(admin, action))
        elif isinstance(action, ExtraPartitions | UnknownTopic):
            results.append(ActionResult(action, ApplyStatus.REPORTED))
    return results


async def _create_topics(admin: Any, creates: list[CreateTopic]) -> list[ActionResult]:
    new_topics = [
        NewTopic(
            a.topic.name, a.topic.partitions, a.replication_factor, topic_configs=a.topic.config()
        )
        for a in creates
    ]
    response = await admin.create_topics(new_topics)
    codes = {name: (code, message) for name, code, message in response.topic_errors}
    results = []
    for action in creates:
        code, message = codes.get(action.topic.name, (0, None))
        if code == 0:
            results.append(ActionResult(action, ApplyStatus.DONE))
        elif code == TopicAlreadyExistsError.errno:
            results.append(ActionResult(action, ApplyStatus.ALREADY_DONE, "created meanwhile"))
        else:
            error = for_code(code).__name__
            results.append(ActionResult(action, ApplyStatus.FAILED, f"{error}: {message}"))
    return results


async def _raise_partitions(admin: Any, action: RaisePartitions) -> ActionResult:
    try:
        await admin.create_partitions({action.topic.name: NewPartitions(action.topic.partitions)})
    except IncompatibleBrokerVersion:
        return ActionResult(
            action, ApplyStatus.UNFIXABLE, "broker does not support raising partitions"
        )
    except KafkaConnectionError:
        raise
    except KafkaError as exc:
        return ActionResult(action, ApplyStatus.FAILED, str(exc))
    return ActionResult(action, ApplyStatus.DONE)


async def _alter_configs(admin: Any, action: ConfigDrift) -> ActionResult:
    configs = {**action.keep, **action.topic.config()}
    resource = ConfigResource(ConfigResourceType.TOPIC, action.topic.name, configs)
    try:
        responses = await admin.alter_configs([resource])
    except IncompatibleBrokerVersion:
        return ActionResult(
            action, ApplyStatus.UNFIXABLE, "broker does not support altering topic configs"
        )
    except KafkaConnectionError:
        raise
    except KafkaError as exc:
        return ActionResult(action, ApplyStatus.UNFIXABLE, f"broker refused: {exc}")
    for response in responses:
        for item in response.to_object()["resources"]:
            if item["error_code"] != 0:
                error = for_code(item["error_code"]).__name__
                detail = f"broker refused: {error}: {item['error_message']}"
                return ActionResult(action, ApplyStatus.UNFIXABLE, detail)
    return ActionResult(action, ApplyStatus.DONE)
