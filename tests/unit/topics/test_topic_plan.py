"""compute_plan: the pure comparison of the catalog with a cluster's state."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from topics.admin import (
    Action,
    ClusterTopic,
    ConfigDifference,
    ConfigDrift,
    CreateTopic,
    ExtraPartitions,
    RaisePartitions,
    UnknownTopic,
    compute_plan,
)
from topics.catalog import ALL_TOPICS, DAY_MS, IAP_RECEIPTS, PLAYER_ACTIONS, Topic


def matching(topic: Topic, **changes: object) -> ClusterTopic:
    """The cluster state of a topic exactly as the catalog wants it, with `changes` applied."""
    state = ClusterTopic(topic.name, topic.partitions, topic.config(), topic.config())
    return replace(state, **changes)  # type: ignore[arg-type]  # test-only overrides by name


def test_empty_cluster_creates_every_catalog_topic_with_its_shape() -> None:
    plan = compute_plan(ALL_TOPICS, {}, replication_factor=3)

    assert [a.topic for a in plan if isinstance(a, CreateTopic)] == list(ALL_TOPICS)
    assert len(plan) == len(ALL_TOPICS)
    create = plan[0]
    assert isinstance(create, CreateTopic)
    assert create.replication_factor == 3
    text = create.describe()
    assert PLAYER_ACTIONS.name in text
    assert "12 partitions" in text
    assert f"retention.ms={7 * DAY_MS}" in text


def test_cluster_matching_catalog_gives_empty_plan() -> None:
    cluster = {topic.name: matching(topic) for topic in ALL_TOPICS}

    assert compute_plan(ALL_TOPICS, cluster, replication_factor=1) == []


def test_fewer_partitions_are_raised_more_are_only_reported() -> None:
    cluster = {
        PLAYER_ACTIONS.name: matching(PLAYER_ACTIONS, partitions=4),
        IAP_RECEIPTS.name: matching(IAP_RECEIPTS, partitions=9),
    }

    plan = compute_plan((PLAYER_ACTIONS, IAP_RECEIPTS), cluster, replication_factor=1)

    assert plan == [RaisePartitions(PLAYER_ACTIONS, 4), ExtraPartitions(IAP_RECEIPTS, 9)]
    assert plan[0].changes_cluster
    assert not plan[1].changes_cluster
    assert "4 -> 12" in plan[0].describe()
    assert "never shrunk" in plan[1].describe()


def test_config_drift_lists_each_difference_and_keeps_other_overrides() -> None:
    # Given a topic whose retention differs, whose cleanup.policy is unset on the broker,
    # and which carries an unrelated override someone set by hand
    state = ClusterTopic(
        PLAYER_ACTIONS.name,
        PLAYER_ACTIONS.partitions,
        configs={"retention.ms": "1000", "segment.ms": "3600000"},
        overrides={"retention.ms": "1000", "segment.ms": "3600000"},
    )

    plan = compute_plan((PLAYER_ACTIONS,), {PLAYER_ACTIONS.name: state}, replication_factor=1)

    assert plan == [
        ConfigDrift(
            PLAYER_ACTIONS,
            (
                ConfigDifference("cleanup.policy", None, "delete"),
                ConfigDifference("retention.ms", "1000", str(7 * DAY_MS)),
            ),
            keep={"segment.ms": "3600000"},
        )
    ]
    assert "cleanup.policy (unset) -> delete" in plan[0].describe()


def test_broker_defaults_equal_to_the_catalog_are_not_drift() -> None:
    # A real Kafka reports defaults (not overrides) for configs never set on the topic.
    state = ClusterTopic(PLAYER_ACTIONS.name, 12, configs=PLAYER_ACTIONS.config(), overrides={})

    assert compute_plan((PLAYER_ACTIONS,), {PLAYER_ACTIONS.name: state}, 1) == []


def test_topics_not_in_catalog_are_reported_sorted_and_never_acted_on() -> None:
    cluster = {
        "zeta.v1": ClusterTopic("zeta.v1", 2),
        "alpha.v1": ClusterTopic("alpha.v1", 1),
        PLAYER_ACTIONS.name: matching(PLAYER_ACTIONS),
    }

    plan = compute_plan((PLAYER_ACTIONS,), cluster, replication_factor=1)

    assert plan == [UnknownTopic("alpha.v1", 1), UnknownTopic("zeta.v1", 2)]
    assert not any(action.changes_cluster for action in plan)
    assert "left alone" in plan[0].describe()


# Property: whatever state the cluster is in, doing what the plan says (as a fully capable
# broker would) leaves nothing to change, and nothing is ever shrunk or deleted.

_policies = st.sampled_from(["delete", "compact", None])
_cluster_topic = st.builds(
    lambda partitions, retention, policy: (partitions, retention, policy),
    st.integers(min_value=1, max_value=24),
    st.sampled_from([None, "1000", str(7 * DAY_MS), str(3 * DAY_MS)]),
    _policies,
)


@st.composite
def cluster_states(draw: st.DrawFn) -> dict[str, ClusterTopic]:
    cluster: dict[str, ClusterTopic] = {}
    present = draw(st.lists(st.sampled_from(ALL_TOPICS), unique=True))
    for topic in present:
        partitions, retention, policy = draw(_cluster_topic)
        configs = {k: v for k, v in (("retention.ms", retention), ("cleanup.policy", policy)) if v}
        cluster[topic.name] = ClusterTopic(topic.name, partitions, configs, configs)
    for name in draw(st.lists(st.from_regex(r"other\.[a-z]{1,8}\.v1", fullmatch=True))):
        cluster[name] = ClusterTopic(name, draw(st.integers(min_value=1, max_value=8)))
    return cluster


def simulate(cluster: dict[str, ClusterTopic], plan: list[Action]) -> dict[str, ClusterTopic]:
    """What a broker supporting every admin API would hold after executing the plan."""
    after = dict(cluster)
    for action in plan:
        if isinstance(action, CreateTopic):
            after[action.topic.name] = matching(action.topic)
        elif isinstance(action, RaisePartitions):
            after[action.topic.name] = replace(
                after[action.topic.name], partitions=action.topic.partitions
            )
        elif isinstance(action, ConfigDrift):
            configs = {**action.keep, **action.topic.config()}
            after[action.topic.name] = replace(
                after[action.topic.name], configs=configs, overrides=configs
            )
    return after


# No deadline: the machine is shared, a slow example is not a failure.
@settings(deadline=None)
@given(cluster_states())
def test_executing_a_plan_leaves_only_report_only_drift(cluster: dict[str, ClusterTopic]) -> None:
    plan = compute_plan(ALL_TOPICS, cluster, replication_factor=1)
    after = simulate(cluster, plan)

    second = compute_plan(ALL_TOPICS, after, replication_factor=1)

    assert not [action for action in second if action.changes_cluster]
    assert set(after) >= set(cluster)  # nothing deleted
    for name, state in cluster.items():
        assert after[name].partitions >= state.partitions  # nothing shrunk
    reported = {a.name for a in second if isinstance(a, UnknownTopic)}
    assert reported == {name for name in cluster if name.startswith("other.")}
