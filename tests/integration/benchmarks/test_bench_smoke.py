"""`liveops bench` is the one way performance is measured: it must keep running and keep the
JSON keys scripts read. Nothing here times anything: every run is tiny (a few hundred events,
one round) and only the shape of its line and the sanity of its figures are checked."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from bench import runtime
from bench.cli import bench_app
from bench.harness import ChildSpec, run_child
from topics.devbroker import EmbeddedBroker
from workers.db import MySQLTarget
from workers.settings import FleetSettings, MySQLSettings, RedisSettings

REQUIRED = {"bench", "events", "throughput_eps", "p50_ms", "p99_ms", "peak_rss_mb"}
REDIS_URL = "redis://127.0.0.1:6379/0"
#: Preloaded events of the tiny runs (the commands refuse fewer than 100).
TINY_EVENTS = 200
#: Players on the board of the tiny scale check (its reads pick offsets below size - 10).
TINY_BOARD = 1_000


@pytest.mark.integration
@pytest.mark.timeout(240)
async def test_the_runtime_bench_prints_its_line_with_every_reference(
    kafka_broker: EmbeddedBroker,
) -> None:
    # Given the session's broker, When a tiny runtime bench runs (children, real stores),
    line = await asyncio.to_thread(runtime.run, 600, 1, bootstrap=kafka_broker.bootstrap_servers)

    # Then the line has the keys the issues name, every reference measured something,
    assert line.keys() >= REQUIRED
    assert line["bench"] == "runtime" and line["events"] == 600
    assert set(line["references"]) == {"raw", "quix_empty", "faust_empty", "naive"}
    assert all(ref["throughput_eps"] > 0 for ref in line["references"].values())
    assert set(line["ratios"]) == {"vs_raw", "vs_quix_empty", "vs_faust_empty", "vs_naive"}
    # and both dedup modes (and loop variants) are reported side by side.
    assert set(line["by_dedup_mode"]) == {"runtime", "processor"}
    assert set(line["by_pipeline"]) == {"pipelined", "sequential"}
    assert set(line["by_claim_ahead"]) == {"on", "off"}
    assert line["by_claim_ahead"]["off"]["throughput_eps"] > 0


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_the_leaderboards_bench_prints_its_line_with_every_reference(
    kafka_broker: EmbeddedBroker, mysql_target: MySQLTarget
) -> None:
    # Given the session's broker, When `liveops bench leaderboards --no-scale` runs tiny,
    line = bench_line(
        ["leaderboards", "--no-scale", *tiny_run(kafka_broker)], settings_for(mysql_target)
    )

    # Then the line has the keys the issues name, with sane figures,
    assert_common_keys(line, "leaderboards")
    # every reference measured something and has its ratio,
    assert_references(line, {"quix_empty", "faust_empty", "naive"})
    # MySQL held exactly one journal row per submission, and the scale part was skipped.
    assert line["exactly_once"] == 1.0
    assert "scale" not in line


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_the_rewards_bench_prints_its_line_with_every_reference(
    kafka_broker: EmbeddedBroker, mysql_target: MySQLTarget
) -> None:
    # Given the session's broker, When `liveops bench rewards` runs tiny,
    line = bench_line(["rewards", *tiny_run(kafka_broker)], settings_for(mysql_target))

    # Then the line has the keys the issues name, with sane figures,
    assert_common_keys(line, "rewards")
    # and every reference (the MySQL ceiling, one transaction per event) has its ratio.
    assert_references(line, {"ceiling", "naive"})


@pytest.mark.integration
def test_the_leaderboards_scale_part_reports_scoring_and_reads_per_board_size(
    kafka_broker: EmbeddedBroker,
) -> None:
    # Given a tiny board, When the scale part's child measures it (as `liveops bench
    # leaderboards --scale-size 1000` runs it after the references; it reads no topic),
    scale = ChildSpec(
        "scale",
        "leaderboards",
        ("--mode", "scale", "--redis-url", REDIS_URL, "--scale-sizes", str(TINY_BOARD)),
    )
    report = run_child(scale, kafka_broker.bootstrap_servers, "unused", 0, 60.0)

    # Then it reports scoring and the three rank reads for that size, each sane.
    assert set(report) == {str(TINY_BOARD)}
    figures = report[str(TINY_BOARD)]
    reads = {f"{read}_{q}_ms" for read in ("top", "player", "around") for q in ("p50", "p99")}
    assert figures.keys() == {"scoring_eps", "scoring_batch_p50_ms", *reads}
    assert figures["scoring_eps"] > 0
    assert all(figures[key] >= 0 for key in ("scoring_batch_p50_ms", *reads))


def tiny_run(broker: EmbeddedBroker) -> list[str]:
    """Options of a tiny run on the session's broker: a few hundred events, one round."""
    return [
        *("--events", str(TINY_EVENTS)),
        *("--rounds", "1"),
        *("--bootstrap", broker.bootstrap_servers),
    ]


def settings_for(target: MySQLTarget) -> FleetSettings:
    """The settings the bench reads: Redis, and a MySQL account that may create databases
    (each measurement runs on a scratch database of its own)."""
    dsn = f"mysql://{target.user}@{target.host}:{target.port}/{target.database}"
    return FleetSettings(
        redis=RedisSettings(url=SecretStr(REDIS_URL)), mysql=MySQLSettings(dsn=SecretStr(dsn))
    )


def bench_line(args: list[str], settings: FleetSettings) -> dict[str, Any]:
    """Run `liveops bench ARGS`; the one JSON line it prints, parsed."""
    result = CliRunner().invoke(bench_app, args, obj=settings)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    line: dict[str, Any] = json.loads(lines[0])
    return line


def assert_common_keys(line: dict[str, Any], bench: str) -> None:
    assert line.keys() >= REQUIRED
    assert line["bench"] == bench and line["events"] == TINY_EVENTS
    assert line["throughput_eps"] > 0
    assert 0 <= line["p50_ms"] <= line["p99_ms"]
    assert line["peak_rss_mb"] > 0


def assert_references(line: dict[str, Any], required: set[str]) -> None:
    """Every required reference is there; each reference measured something and has a ratio."""
    references: dict[str, dict[str, float]] = line["references"]
    assert set(references) >= required
    assert all(reference["throughput_eps"] > 0 for reference in references.values())
    assert set(line["ratios"]) == {f"vs_{name}" for name in references}
    assert all(ratio > 0 for ratio in line["ratios"].values())
