"""execute_plan with a plain fake admin client: the broker answers Tansu cannot give.

The real broker paths (create, unsupported raise/alter, races) are in
tests/integration/topics; here a fake plays a broker that supports every API, or refuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import IncompatibleBrokerVersion, KafkaConnectionError

from topics.admin import (
    Action,
    ApplyStatus,
    ConfigDifference,
    ConfigDrift,
    CreateTopic,
    ExtraPartitions,
    RaisePartitions,
    UnknownTopic,
    execute_plan,
)
from topics.catalog import IAP_RECEIPTS, LEADERBOARD_SCORES, PLAYER_ACTIONS


@dataclass
class Response:
    """Enough of an aiokafka response object for execute_plan."""

    topic_errors: list[tuple[str, int, str | None]] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)

    def to_object(self) -> dict[str, Any]:
        return {"resources": self.resources}


@dataclass
class FakeAdmin:
    create_errors: dict[str, tuple[int, str]] = field(default_factory=dict)
    partitions_error: Exception | None = None
    alter_error_code: int = 0
    alter_raises: Exception | None = None
    created: list[Any] = field(default_factory=list)
    raised: dict[str, int] = field(default_factory=dict)
    altered: dict[str, dict[str, str]] = field(default_factory=dict)

    async def create_topics(self, new_topics: list[Any]) -> Response:
        self.created.extend(new_topics)
        errors = [(t.name, *self.create_errors.get(t.name, (0, None))) for t in new_topics]
        return Response(topic_errors=errors)

    async def create_partitions(self, topic_partitions: dict[str, Any]) -> Response:
        if self.partitions_error is not None:
            raise self.partitions_error
        self.raised.update({name: p.total_count for name, p in topic_partitions.items()})
        return Response()

    async def alter_configs(self, resources: list[Any]) -> list[Response]:
        if self.alter_raises is not None:
            raise self.alter_raises
        for resource in resources:
            self.altered[resource.name] = resource.configs
        items = [
            {"error_code": self.alter_error_code, "error_message": "policy says no"}
            for _ in resources
        ]
        return [Response(resources=items)]


DRIFT = ConfigDrift(
    PLAYER_ACTIONS,
    (ConfigDifference("retention.ms", "1000", PLAYER_ACTIONS.config()["retention.ms"]),),
    keep={"segment.ms": "3600000"},
)


async def test_creates_in_one_request_with_catalog_shape_and_treats_races_as_done() -> None:
    admin = FakeAdmin(create_errors={IAP_RECEIPTS.name: (36, "Topic already exists.")})
    plan = [CreateTopic(PLAYER_ACTIONS, 3), CreateTopic(IAP_RECEIPTS, 3)]

    results = await execute_plan(admin, plan)

    assert [r.status for r in results] == [ApplyStatus.DONE, ApplyStatus.ALREADY_DONE]
    sent = admin.created[0]
    assert (sent.name, sent.num_partitions, sent.replication_factor) == (PLAYER_ACTIONS.name, 12, 3)
    assert sent.topic_configs == PLAYER_ACTIONS.config()


async def test_a_refused_create_is_failed_with_the_broker_reason() -> None:
    admin = FakeAdmin(create_errors={PLAYER_ACTIONS.name: (38, "replication factor 3 > 1")})

    [result] = await execute_plan(admin, [CreateTopic(PLAYER_ACTIONS, 3)])

    assert result.status is ApplyStatus.FAILED
    assert "InvalidReplicationFactor" in result.detail
    assert "replication factor 3 > 1" in result.describe()


async def test_capable_broker_raises_partitions_and_sets_configs_keeping_overrides() -> None:
    admin = FakeAdmin()

    results = await execute_plan(admin, [RaisePartitions(LEADERBOARD_SCORES, 4), DRIFT])

    assert [r.status for r in results] == [ApplyStatus.DONE, ApplyStatus.DONE]
    assert admin.raised == {LEADERBOARD_SCORES.name: 12}
    assert admin.altered[PLAYER_ACTIONS.name] == {
        "segment.ms": "3600000",
        **PLAYER_ACTIONS.config(),
    }


async def test_broker_without_the_apis_reports_unfixable_drift_instead_of_crashing() -> None:
    admin = FakeAdmin(
        partitions_error=IncompatibleBrokerVersion("CreatePartitionsRequest unknown"),
        alter_raises=IncompatibleBrokerVersion("AlterConfigsRequest unknown"),
    )

    raise_result, drift_result = await execute_plan(
        admin, [RaisePartitions(LEADERBOARD_SCORES, 4), DRIFT]
    )

    assert raise_result.status is ApplyStatus.UNFIXABLE
    assert raise_result.detail == "broker does not support raising partitions"
    assert drift_result.status is ApplyStatus.UNFIXABLE
    assert drift_result.detail == "broker does not support altering topic configs"


async def test_config_change_refused_per_resource_is_unfixable_with_the_reason() -> None:
    admin = FakeAdmin(alter_error_code=44)  # POLICY_VIOLATION

    [result] = await execute_plan(admin, [DRIFT])

    assert result.status is ApplyStatus.UNFIXABLE
    assert "PolicyViolation" in result.detail
    assert "policy says no" in result.detail


async def test_report_only_actions_touch_nothing() -> None:
    admin = FakeAdmin()
    plan: list[Action] = [ExtraPartitions(IAP_RECEIPTS, 9), UnknownTopic("stray.v1", 1)]

    results = await execute_plan(admin, plan)

    assert [r.status for r in results] == [ApplyStatus.REPORTED, ApplyStatus.REPORTED]
    assert (admin.created, admin.raised, admin.altered) == ([], {}, {})


async def test_losing_the_connection_mid_way_propagates() -> None:
    admin = FakeAdmin(partitions_error=KafkaConnectionError("connection closed"))

    with pytest.raises(KafkaConnectionError):
        await execute_plan(admin, [RaisePartitions(LEADERBOARD_SCORES, 4)])
