"""Settings, faust options and the `liveops stream` commands of the velocity job, no broker."""

from __future__ import annotations

from dataclasses import replace

import faust
import pytest
import typer
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from topics.catalog import LEADERBOARD_SCORES, PLAYER_ACTIONS
from topics.devbroker import free_port
from topics.settings import KafkaSettings
from workers.settings import FleetSettings
from workers.streams.cli import stream_app, velocity_section
from workers.streams.errors import StreamConfigError
from workers.streams.faust_app import broker_urls, build_faust_app, credentials_for
from workers.streams.settings import VelocitySettings
from workers.streams.velocity_job import changelog_topic_name, input_partitions


def test_defaults_are_a_minute_and_120_events() -> None:
    settings = VelocitySettings()
    assert (settings.window_s, settings.max_events_per_window) == (60, 120)
    assert settings.expires_s >= settings.window_s
    assert settings.auto_offset_reset == "latest"


def test_windows_must_outlive_themselves() -> None:
    with pytest.raises(ValidationError, match="expires_s must be at least window_s"):
        VelocitySettings(window_s=300, expires_s=60)


def test_the_lag_is_measured_every_15_s_by_default_and_never_continuously() -> None:
    assert VelocitySettings().lag_interval_s == 15.0
    with pytest.raises(ValidationError, match="lag_interval_s"):
        VelocitySettings(lag_interval_s=0)


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        VelocitySettings.model_validate({"window_seconds": 30})


def test_the_command_uses_defaults_until_fleet_settings_has_a_velocity_section() -> None:
    assert velocity_section(FleetSettings()) == VelocitySettings()


def test_stream_app_offers_velocity() -> None:
    root = typer.Typer()
    root.callback()(lambda: None)
    root.add_typer(stream_app, name="stream")
    result = CliRunner().invoke(root, ["stream", "--help"])
    assert result.exit_code == 0
    assert "velocity" in result.output


def test_stream_app_offers_lag_and_says_it_joins_no_group() -> None:
    result = CliRunner().invoke(stream_app, ["lag", "--help"])
    assert result.exit_code == 0
    assert "LIVEOPS_VELOCITY__APP_ID" in result.output
    assert "Joins no group and commits nothing" in result.output


def test_lag_with_an_unreachable_broker_exits_1_with_one_clear_line() -> None:
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")

    result = CliRunner().invoke(stream_app, ["lag", "--json"], obj=FleetSettings(kafka=kafka))

    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: cannot reach Kafka at {kafka.bootstrap_servers}")


def test_catalog_inputs_are_co_partitioned() -> None:
    assert input_partitions() == PLAYER_ACTIONS.partitions == LEADERBOARD_SCORES.partitions


def test_inputs_with_different_partition_counts_are_refused() -> None:
    narrow = replace(LEADERBOARD_SCORES, partitions=3)
    with pytest.raises(StreamConfigError, match="co-partitioned"):
        input_partitions((PLAYER_ACTIONS, narrow))


def test_changelog_name_follows_the_app_id() -> None:
    assert changelog_topic_name("liveops.velocity") == "liveops.velocity-player_windows-changelog"


def test_every_bootstrap_server_becomes_a_kafka_url() -> None:
    kafka = KafkaSettings(bootstrap_servers="10.0.0.1:9092, 10.0.0.2:9092")
    assert broker_urls(kafka) == ["kafka://10.0.0.1:9092", "kafka://10.0.0.2:9092"]


def test_plaintext_needs_no_credentials() -> None:
    assert credentials_for(KafkaSettings()) is None


def test_sasl_settings_become_faust_sasl_credentials() -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="velocity",
        sasl_password=SecretStr("s3cret"),
    )
    credentials = credentials_for(kafka)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("velocity", "s3cret")
    assert credentials.mechanism.value == "SCRAM-SHA-512"


def faust_app(settings: VelocitySettings) -> faust.App:
    return build_faust_app(
        KafkaSettings(),
        app_id=settings.app_id,
        partitions=12,
        auto_offset_reset=settings.auto_offset_reset,
        commit_interval_s=settings.commit_interval_s,
        session_timeout_s=settings.session_timeout_s,
        rebalance_timeout_s=settings.rebalance_timeout_s,
        one_record_per_batch=settings.one_record_per_batch,
        data_dir=settings.data_dir,
    )


def test_by_default_every_record_is_its_own_batch_for_the_embedded_broker() -> None:
    assert faust_app(VelocitySettings()).conf.producer_max_batch_size == 1


def test_against_apache_kafka_batches_are_left_to_faust() -> None:
    app = faust_app(VelocitySettings(one_record_per_batch=False))
    assert app.conf.producer_max_batch_size > 1


def test_the_app_is_the_consumer_group_and_declares_only_its_changelog() -> None:
    conf = faust_app(VelocitySettings(app_id="liveops.velocity.test")).conf
    assert conf.id == "liveops.velocity.test"
    assert (conf.topic_partitions, conf.topic_disable_leader) == (12, True)
    assert conf.consumer_auto_offset_reset == "latest"
    assert conf.broker_heartbeat_interval < conf.broker_session_timeout
