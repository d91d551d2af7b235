"""The one `liveops` command. Each layer owns its subcommands; this module mounts them.

Settings are read once here (FleetSettings) and handed down through the typer context; a bad
setting ends the process with one line naming the variable, never a traceback.
"""

from __future__ import annotations

import asyncio

import typer

from bench.cli import bench_app
from producers.cli import gateway_command
from schemas.errors import LiveopsError
from topics.cli import dev_app, tail_command, topics_app
from workers.db import MySQLTarget, migrate
from workers.logs import configure_logging
from workers.processors.leaderboards.cli import leaderboards_app
from workers.processors.rewards.cli import rewards_app
from workers.runtime.cli import dlq_app, run_worker
from workers.settings import FleetSettings, SettingsError, load_settings, reference_rows
from workers.streams.cli import stream_app

app = typer.Typer(
    help="liveops-fleet: the event backbone of a live game.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(dev_app, name="dev")
app.add_typer(topics_app, name="topics")
app.add_typer(rewards_app, name="rewards")
app.add_typer(leaderboards_app, name="leaderboards")
app.add_typer(stream_app, name="stream")
app.command("tail")(tail_command)
app.add_typer(dlq_app, name="dlq")
app.add_typer(bench_app, name="bench")
app.command("worker")(run_worker)
app.command("gateway")(gateway_command)


@app.callback()
def root(ctx: typer.Context) -> None:
    try:
        settings = load_settings()
    except SettingsError as exc:
        typer.echo(f"liveops: bad setting: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    ctx.obj = settings


@app.command("demo")
def demo(ctx: typer.Context) -> None:
    """Run the whole fleet on the embedded broker, play simulated players, print a summary."""
    from workers.demo.run import run_demo

    settings: FleetSettings = ctx.obj
    if settings.log_level == "info":
        # The summary is the demo's output; per-batch info logs would bury it.
        configure_logging("warning", settings.log_format)
    raise typer.Exit(asyncio.run(run_demo(settings)))


@app.command("migrate")
def migrate_command(ctx: typer.Context) -> None:
    """Bring the MySQL schema (LIVEOPS_MYSQL__DSN) to the newest revision; idempotent."""
    from sqlalchemy.exc import SQLAlchemyError  # Alembic's: loaded only when migrating

    settings: FleetSettings = ctx.obj
    try:
        migrate(MySQLTarget.from_dsn(settings.mysql.dsn.get_secret_value()))
    except (LiveopsError, SQLAlchemyError) as exc:
        typer.echo(
            f"liveops migrate: {exc.__class__.__name__}: {str(exc).splitlines()[0]}", err=True
        )
        raise typer.Exit(1) from None
    typer.echo("migrations applied")


@app.command("settings")
def show_settings(
    ctx: typer.Context,
    reference: bool = typer.Option(False, help="Print every variable as a Markdown table."),
) -> None:
    """Print the settings in force, secrets masked."""
    settings: FleetSettings = ctx.obj
    if not reference:
        typer.echo(settings.model_dump_json(indent=2))
        return
    typer.echo("| variable | default (in force) | documented in |\n|---|---|---|")
    for env, value, module in reference_rows(settings):
        typer.echo(f"| `{env}` | `{value}` | `{module}` |")


def main() -> None:
    app()
