"""`liveops topics lag` without a broker: the lag arithmetic, the table and JSON lines, group
names, and the command's errors. Reading a real cluster is in tests/integration/topics."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from topics.catalog import (
    CONSUMER_GROUPS,
    IAP_GROUP,
    IAP_OUTCOMES,
    PLAYER_ACTIONS,
    REWARDS_GROUP,
    ConsumerGroup,
)
from topics.cli import topics_app
from topics.devbroker import free_port
from topics.lag import (
    LEGEND,
    GroupLag,
    LagTarget,
    PartitionLag,
    groups_named,
    lag_of,
    render_json,
    render_table,
    targets_of,
)
from topics.settings import KafkaSettings

REWARDS = GroupLag(
    "rewards",
    "liveops.rewards",
    (
        PartitionLag("player.actions.v1", 0, 120, 130),
        PartitionLag("player.actions.v1", 11, None, 7),
        PartitionLag("iap.outcomes.v1", 2, 40, 40),
    ),
)
REWARDS_RETRY = GroupLag(
    "rewards.retry", "liveops.rewards.retry", (PartitionLag("liveops.rewards.retry.10s", 0, 3, 5),)
)


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings


def test_lag_is_end_minus_committed() -> None:
    assert lag_of(120, 130) == 10
    assert lag_of(40, 40) == 0


def test_lag_without_a_commit_is_the_whole_partition() -> None:
    assert lag_of(None, 7) == 7
    assert lag_of(None, 0) == 0


def test_lag_never_goes_below_zero_when_the_commit_is_past_the_end() -> None:
    # A topic deleted and recreated keeps the group's old, larger committed offset.
    assert lag_of(50, 10) == 0


def test_group_total_sums_its_partitions() -> None:
    assert [p.lag for p in REWARDS.partitions] == [10, 7, 0]
    assert REWARDS.total == 17


def test_table_aligns_columns_adds_a_total_per_group_and_the_legend() -> None:
    lines = render_table([REWARDS, REWARDS_RETRY])

    assert lines == [
        "GROUP          TOPIC                      PARTITION  COMMITTED  END  LAG",
        "rewards        player.actions.v1                  0        120  130   10",
        "rewards        player.actions.v1                 11          -    7    7",
        "rewards        iap.outcomes.v1                    2         40   40    0",
        "rewards        total                                                  17",
        "rewards.retry  liveops.rewards.retry.10s          0          3    5    2",
        "rewards.retry  total                                                   2",
        LEGEND,
    ]


def test_table_leaves_the_legend_out_when_every_partition_has_a_commit() -> None:
    lines = render_table([REWARDS_RETRY])

    assert LEGEND not in lines
    assert lines[-1].split() == ["rewards.retry", "total", "2"]


def test_json_is_one_object_per_partition_with_null_for_no_commit() -> None:
    lines = render_json([REWARDS, REWARDS_RETRY])

    docs = [json.loads(line) for line in lines]
    assert docs[1] == {
        "group": "rewards",
        "topic": "player.actions.v1",
        "partition": 11,
        "committed": None,
        "end": 7,
        "lag": 7,
    }
    assert [(d["group"], d["partition"], d["committed"], d["lag"]) for d in docs] == [
        ("rewards", 0, 120, 10),
        ("rewards", 11, None, 7),
        ("rewards", 2, 40, 0),
        ("rewards.retry", 0, 3, 2),
    ]


def test_targets_of_a_group_are_its_inputs_then_its_retry_tiers_in_their_own_group() -> None:
    retry_topics = tuple(tier.topic for tier in REWARDS_GROUP.retry_tiers)

    targets = targets_of([REWARDS_GROUP, IAP_GROUP])

    assert [t.label for t in targets] == ["rewards", "rewards.retry", "iap", "iap.retry"]
    assert targets[:2] == [
        LagTarget("rewards", "liveops.rewards", (PLAYER_ACTIONS, IAP_OUTCOMES)),
        LagTarget("rewards.retry", "liveops.rewards.retry", retry_topics),
    ]
    assert len(retry_topics) == len(REWARDS_GROUP.retry_delays_s) > 0
    assert [t.group_id for t in targets[2:]] == ["liveops.iap", "liveops.iap.retry"]


def test_a_group_without_retry_tiers_has_only_its_input_target() -> None:
    group = ConsumerGroup("probe", (PLAYER_ACTIONS,), retry_delays_s=())

    assert targets_of([group]) == [LagTarget("probe", "liveops.probe", (PLAYER_ACTIONS,))]


def test_no_names_means_every_catalog_group() -> None:
    assert groups_named([], CONSUMER_GROUPS) == CONSUMER_GROUPS


def test_names_keep_their_order_once_each_with_or_without_the_liveops_prefix() -> None:
    names = ["iap", "liveops.rewards", "rewards"]

    assert groups_named(names, CONSUMER_GROUPS) == (IAP_GROUP, REWARDS_GROUP)


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"no consumer group 'velocity'; known: leaderboards, "):
        groups_named(["rewards", "velocity"], CONSUMER_GROUPS)


def test_command_with_an_unknown_group_exits_2_with_one_line() -> None:
    result = CliRunner().invoke(topics_app, ["lag", "rewards", "rewardz"], obj=None)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: no consumer group 'rewardz'; known: leaderboards, rewards, iap, notifications"
    ]


def test_command_with_an_unreachable_broker_exits_1_with_one_clear_line() -> None:
    nowhere = Settings(KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"))

    result = CliRunner().invoke(topics_app, ["lag", "iap", "--json"], obj=nowhere)

    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: cannot reach Kafka at {nowhere.kafka.bootstrap_servers}")
