"""`liveops stream ...`: the stateful windowed jobs, each a faust app in its own process."""

from __future__ import annotations

from typing import Annotated

import typer

from topics.cli import echo_lag
from topics.lag import LagTarget
from workers.settings import FleetSettings
from workers.streams.settings import VelocitySettings

stream_app = typer.Typer(
    help="Stateful windowed jobs (faust-streaming), never the effect path.", no_args_is_help=True
)


def velocity_section(settings: FleetSettings) -> VelocitySettings:
    """FleetSettings' `velocity` section once it has one (LIVEOPS_VELOCITY__*), else defaults."""
    section = getattr(settings, "velocity", None)
    return section if isinstance(section, VelocitySettings) else VelocitySettings()


@stream_app.command("velocity")
def velocity(ctx: typer.Context) -> None:
    """Flag players who send more than max_events_per_window events in one window.

    Reads player.actions.v1 and leaderboard.scores.v1, publishes PlayerFlagged to
    players.flags.v1, serves /metrics, /healthz and /readyz on LIVEOPS_METRICS_PORT (liveness
    stale after LIVEOPS_RUNTIME__LIVENESS_STALE_S, as the workers). Stops on SIGTERM or SIGINT.
    """
    # Imported here: faust is loaded only by the command that runs it.
    from workers.streams.velocity_job import run_velocity

    settings: FleetSettings = ctx.obj
    run_velocity(
        settings.kafka,
        velocity_section(settings),
        metrics_port=settings.metrics_port,
        liveness_stale_s=settings.runtime.liveness_stale_s,
        log_level=settings.log_level,
    )


@stream_app.command("lag")
def velocity_lag(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Per partition of the velocity job's inputs: committed offset, end offset, lag.

    The table and JSON lines of `liveops topics lag`, for one Kafka group: the
    job's app id (LIVEOPS_VELOCITY__APP_ID), labelled velocity, on its inputs
    player.actions.v1 and leaderboard.scores.v1, then a total line.
    Lag = end - committed. Committed "-" (null with --json): never committed
    there, so lag = end offset; with auto_offset_reset "latest" (the default)
    the job would skip that backlog, not read it.
    Lag on one partition only: it is stuck. On all: the job is too slow.
    Joins no group and commits nothing: it never disturbs the running job.
    Exit 1 when the broker is unreachable or an input topic is missing.
    """
    # Imported here: the inputs live beside the job, which loads faust.
    from workers.streams.velocity_job import INPUTS, JOB

    settings: FleetSettings = ctx.obj
    target = LagTarget(JOB, velocity_section(settings).app_id, INPUTS)
    echo_lag(settings.kafka, [target], as_json=as_json)
