"""The helm chart must only start what exists: every enabled worker is a registered processor
or, when it has its own `args`, a `liveops` command (a typo crash-loops a whole Deployment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from workers.cli import app
from workers.processors.registry import PROCESSORS

VALUES = Path(__file__).resolve().parents[3] / "helm" / "liveops-fleet" / "values.yaml"


def enabled_workers() -> dict[str, dict[str, Any]]:
    values = yaml.safe_load(VALUES.read_text())
    workers: dict[str, dict[str, Any]] = values["workers"]
    return {name: worker for name, worker in workers.items() if worker.get("enabled")}


def test_the_chart_enables_the_built_workers_and_the_velocity_job() -> None:
    assert set(enabled_workers()) == {"rewards", "leaderboards", "velocity"}


def test_every_enabled_worker_is_runnable() -> None:
    runner = CliRunner()
    for name, worker in enabled_workers().items():
        args = worker.get("args")
        if args is None:
            assert name in PROCESSORS, f"helm worker {name!r} is not a registered processor"
            continue
        # The command exists and parses (its --help), without running it.
        answer = runner.invoke(app, [*args, "--help"])
        assert answer.exit_code == 0, f"helm worker {name!r}: liveops {' '.join(args)}: {answer}"


def test_the_setup_jobs_commands_parse() -> None:
    """templates/setup-job.yaml runs these two before every install and upgrade: a renamed
    command would fail every release, so both must exist (their --help, without running them)."""
    # Given the CLI the image's `liveops` entry point runs
    runner = CliRunner()
    for args in (["migrate"], ["topics", "apply"]):
        # When asked for the command's help
        answer = runner.invoke(app, [*args, "--help"], prog_name="liveops")
        # Then it exists and parses: its own usage line, not the root command's
        assert answer.exit_code == 0, f"setup Job: liveops {' '.join(args)}: {answer.output}"
        assert "Usage: liveops " + " ".join(args) in answer.output


def test_the_gateways_command_parses() -> None:
    """templates/gateway.yaml runs `liveops gateway` (gateway.enabled is on by default): a
    renamed command would crash-loop every gateway pod, so it must exist (its --help)."""
    # Given the chart's values, which turn the gateway on
    values = yaml.safe_load(VALUES.read_text())
    assert values["gateway"]["enabled"] is True
    # When the CLI the image's `liveops` entry point runs is asked for the gateway's help
    answer = CliRunner().invoke(app, ["gateway", "--help"], prog_name="liveops")
    # Then it exists and parses: its own usage line, not the root command's
    assert answer.exit_code == 0, f"gateway: liveops gateway: {answer.output}"
    assert "Usage: liveops gateway" in answer.output
