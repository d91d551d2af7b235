"""`liveops topics ...` and `liveops tail` without a broker: catalog listing and clear errors.

The typer apps are invoked with the settings as `obj`, as the root callback hands them down,
so the test process's logging is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import typer
from typer.testing import CliRunner

from topics.catalog import ALL_TOPICS, PLAYER_ACTIONS, REWARDS_GROUP
from topics.cli import tail_command, topics_app
from topics.devbroker import free_port
from topics.settings import KafkaSettings


@dataclass(frozen=True)
class Settings:
    kafka: KafkaSettings


@pytest.fixture
def nowhere() -> Settings:
    """Settings pointing at a loopback port nothing listens on."""
    return Settings(KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"))


def tail_app() -> typer.Typer:
    """A root app mounting `tail` the way workers/cli.py does."""
    app = typer.Typer()
    # A callback keeps `tail` a subcommand; a single-command app would become the command.
    app.callback()(lambda: None)
    app.command("tail")(tail_command)
    return app


def test_list_shows_every_catalog_topic_with_shape_owner_and_companions() -> None:
    result = CliRunner().invoke(topics_app, ["list"], obj=None)

    assert result.exit_code == 0, result.output
    for topic in ALL_TOPICS:
        assert topic.name in result.output
    row = next(line for line in result.output.splitlines() if line.startswith(PLAYER_ACTIONS.name))
    assert row.split()[1:5] == ["12", "7d", "player_id", "gateway"]
    assert "daily_login, level_completed, match_result, offer_bought, quest_completed" in row
    assert f"read by {REWARDS_GROUP.name}:" in result.output
    assert REWARDS_GROUP.dead_letter.name in result.output


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_unreachable_broker_exits_1_with_one_clear_line(command: str, nowhere: Settings) -> None:
    result = CliRunner().invoke(topics_app, [command], obj=nowhere)

    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: cannot reach Kafka at {nowhere.kafka.bootstrap_servers}")


def test_tail_of_a_topic_not_in_the_catalog_lists_the_known_ones(nowhere: Settings) -> None:
    result = CliRunner().invoke(tail_app(), ["tail", "player.actions.v9"], obj=nowhere)

    assert result.exit_code == 1
    assert "'player.actions.v9' is not in the catalog; known:" in result.stderr
    assert PLAYER_ACTIONS.name in result.stderr


def test_tail_with_unreachable_broker_exits_1(nowhere: Settings) -> None:
    result = CliRunner().invoke(tail_app(), ["tail", PLAYER_ACTIONS.name], obj=nowhere)

    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot reach Kafka at")
