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
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from typer.testing import CliRunner

from topics.catalog import LEADERBOARD_SCORES, PLAYER_ACTIONS
from topics.settings import KafkaSettings
from workers.settings import FleetSettings
from workers.streams.cli import stream_app
from workers.streams.velocity_job import INPUTS, JOB

from .velocity_cases import ACTIONS_LEFT, prepare_group, velocity_settings

pytestmark = pytest.mark.integration


def test_lag_command_reads_the_jobs_group_on_its_inputs(
    kafka_settings: KafkaSettings, unique_name: str, tmp_path: Path
) -> None:
    # Given the prepared group (sync on purpose: the command runs its own event loop, as it
    # does from a shell)
    velocity = velocity_settings(unique_name, tmp_path)
    actions, scores, ends = asyncio.run(prepare_group(kafka_settings, velocity, unique_name))
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
