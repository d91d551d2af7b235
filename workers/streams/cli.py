"""`liveops stream ...`: the stateful windowed jobs, each a faust app in its own process."""

from __future__ import annotations

import typer

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
