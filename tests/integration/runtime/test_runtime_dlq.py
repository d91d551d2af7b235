"""`liveops dlq`: a dead letter replayed after the cause passed is applied, once; replays
are never repeated."""

from __future__ import annotations

import aiomysql
import pytest
import structlog
from typer.testing import CliRunner

from topics.catalog import ConsumerGroup
from topics.settings import KafkaSettings
from workers.runtime import dlq, headers
from workers.runtime.worker import RunLimits

from .conftest import MakeWorker
from .runtime_helpers import login, probe_rows, publish, read_all, record_count

pytestmark = pytest.mark.integration


async def test_replay_republishes_once_and_the_event_is_applied(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    make_worker: MakeWorker,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
) -> None:
    # Given an event dead-lettered after failing its 3 attempts (input, tier 1, tier 2)
    event = login("flaky-3-p", f"{unique_name}-k")
    await publish(kafka_settings, group.inputs[0], [event])
    await make_worker().run(RunLimits(max_events=3))
    assert await record_count(kafka_settings, group.dead_letter) == 1

    # When a dry run looks first
    planned = await dlq.replay(kafka_settings, group, max_records=10, dry_run=True)

    # Then it lists the dead letter and publishes nothing
    assert [r.key for r in planned] == [b"flaky-3-p"]
    assert await record_count(kafka_settings, group.inputs[0]) == 1

    # When it is replayed, then replayed again
    replayed = await dlq.replay(kafka_settings, group, max_records=10)
    again = await dlq.replay(kafka_settings, group, max_records=10)

    # Then it went back to its original topic once, same key and value, marked as a replay
    assert len(replayed) == 1
    assert again == []
    copies = await read_all(kafka_settings, group.inputs[0], expected=2)
    (copy,) = [r for r in copies if r.header(headers.REPLAYED_AT)]
    assert copy.key == b"flaky-3-p"
    assert copy.value == replayed[0].value
    where = f"{group.dead_letter.name}/{replayed[0].partition}/{replayed[0].offset}"
    assert copy.header(headers.REPLAYED_FROM) == where
    async with dlq.DeadLetterReader(kafka_settings, group) as reader:
        assert sum(state.pending for state in await reader.state()) == 0
    # And the worker applies it (its fourth attempt succeeds), exactly once
    await make_worker().run(RunLimits(max_events=1))
    assert set(await probe_rows(mysql_pool, unique_name)) == {event.idempotency_key}


def test_dlq_commands_list_show_and_refuse_unknown_groups() -> None:
    from workers.cli import app

    try:
        result = CliRunner().invoke(app, ["dlq", "list", "no-such-group"])
    finally:
        structlog.reset_defaults()  # the command configured logging onto the runner's stream
    assert result.exit_code == 2
    assert "no consumer group 'no-such-group'" in result.output
