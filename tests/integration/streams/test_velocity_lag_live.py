"""`liveops stream lag` against the real embedded broker: the velocity job's group, read on the
catalog inputs under a test-only app id, with commits the test made itself.

The inputs are the catalog's topics, shared with the other tests of the session (which run one
at a time): the group is this test's own, so every committed value is known; the end offsets
are read just before the command, and nothing publishes to the inputs in between. The test's
player's events are valid ones, as the other tests' jobs may read them.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from typer.testing import CliRunner

from topics.catalog import LEADERBOARD_SCORES, PLAYER_ACTIONS
from topics.offsets import end_offsets
from topics.settings import KafkaSettings
from workers.settings import FleetSettings
from workers.streams.cli import stream_app
from workers.streams.settings import VelocitySettings
from workers.streams.velocity import window_for
from workers.streams.velocity_job import INPUTS, JOB

from .velocity_cases import action, velocity_settings
from .velocity_process import publish

pytestmark = pytest.mark.integration

#: Records the group leaves unread on the player's actions partition.
ACTIONS_LEFT = 2


async def commit(
    settings: KafkaSettings, group_id: str, offsets: dict[TopicPartition, int]
) -> None:
    """Commit `offsets` for `group_id` as the job would, from a plain assigned consumer."""
    consumer = AIOKafkaConsumer(
        **settings.client_kwargs(), group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def prepare(
    settings: KafkaSettings, velocity: VelocitySettings, player_id: str
) -> tuple[TopicPartition, TopicPartition, dict[TopicPartition, int]]:
    """Given: one player's events (4 actions, 1 score: one partition of each input, the same
    number), the group committed ACTIONS_LEFT short of the actions partition's end and nowhere
    else (not on the scores partition). Returns both partitions and every input's ends."""
    window = window_for(int(time.time() * 1000), velocity.window_s)
    landed = await publish(settings, [action(player_id, window, i) for i in range(5)])
    [partition] = {meta.partition for meta in landed}
    actions = TopicPartition(PLAYER_ACTIONS.name, partition)
    scores = TopicPartition(LEADERBOARD_SCORES.name, partition)
    inputs = [TopicPartition(t.name, p) for t in INPUTS for p in range(t.partitions)]
    ends = await end_offsets(settings, inputs)
    await commit(settings, velocity.app_id, {actions: ends[actions] - ACTIONS_LEFT})
    return actions, scores, ends


def test_lag_command_reads_the_jobs_group_on_its_inputs(
    kafka_settings: KafkaSettings, unique_name: str, tmp_path: Path
) -> None:
    # Given the prepared group (sync on purpose: the command runs its own event loop, as it
    # does from a shell)
    velocity = velocity_settings(unique_name, tmp_path)
    actions, scores, ends = asyncio.run(prepare(kafka_settings, velocity, unique_name))
    fleet = FleetSettings(kafka=kafka_settings, velocity=velocity)

    # When the lag is read as JSON lines and as the table
    as_json = CliRunner().invoke(stream_app, ["lag", "--json"], obj=fleet)
    table = CliRunner().invoke(stream_app, ["lag"], obj=fleet)

    # Then one line per partition of every input, in order, all labelled velocity
    assert as_json.exit_code == 0, as_json.output
    docs = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(d["topic"], d["partition"]) for d in docs] == [
        (t.name, p) for t in INPUTS for p in range(t.partitions)
    ]
    assert {d["group"] for d in docs} == {JOB}
    by_partition = {TopicPartition(d["topic"], d["partition"]): d for d in docs}
    # the committed partition exactly, with the lag the test left there
    assert by_partition[actions] == {
        "group": "velocity",
        "topic": PLAYER_ACTIONS.name,
        "partition": actions.partition,
        "committed": ends[actions] - ACTIONS_LEFT,
        "end": ends[actions],
        "lag": ACTIONS_LEFT,
    }
    # a partition with records but never committed on: null, and the whole partition is lag
    assert ends[scores] >= 1
    assert by_partition[scores] == {
        "group": "velocity",
        "topic": LEADERBOARD_SCORES.name,
        "partition": scores.partition,
        "committed": None,
        "end": ends[scores],
        "lag": ends[scores],
    }
    committed = [tp for tp, d in by_partition.items() if d["committed"] is not None]
    assert committed == [actions]
    assert all(d["end"] == ends[tp] for tp, d in by_partition.items())
    # and the table ends with the group's total and the legend
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[-2].split() == [JOB, "total", str(sum(d["lag"] for d in docs))]
    assert lines[-1].startswith('committed "-"')
