"""`liveops bench runtime|leaderboards|rewards`: one JSON line per run, on stdout.

Each command starts a private embedded broker unless `--bootstrap` names one, preloads a fresh
topic, and measures the subject and its references in child processes, interleaved over
`--rounds` rounds (medians reported). Redis and MySQL come from the settings in force.
Each bench module is imported by its command: they pull in the processors, Quix Streams and
faust, which every other `liveops` command (a worker's start among them) would pay for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer

from bench.harness import BenchError

bench_app = typer.Typer(help="Benchmarks: one JSON line each.", no_args_is_help=True)
EventsOption = typer.Option(20_000, min=100, help="Preloaded events per round.")
RoundsOption = typer.Option(3, min=1, help="Interleaved rounds; medians are reported.")
BootstrapOption = typer.Option(None, help="Use this broker instead of a private one.")


def _emit(run: Callable[..., dict[str, Any]], ctx: typer.Context, **kwargs: Any) -> None:
    settings = ctx.obj
    try:
        line = run(
            redis_url=settings.redis.url.get_secret_value(),
            mysql_dsn=settings.mysql.dsn.get_secret_value(),
            **kwargs,
        )
    except BenchError as exc:
        typer.echo(f"liveops bench: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(line))


@bench_app.command("runtime")
def bench_runtime(
    ctx: typer.Context,
    events: int = EventsOption,
    rounds: int = RoundsOption,
    bootstrap: str | None = BootstrapOption,
) -> None:
    """An empty processor on the runtime vs raw aiokafka, empty Quix Streams, empty faust."""
    from bench import runtime

    _emit(runtime.run, ctx, events=events, rounds=rounds, bootstrap=bootstrap)


@bench_app.command("leaderboards")
def bench_leaderboards(
    ctx: typer.Context,
    events: int = EventsOption,
    rounds: int = RoundsOption,
    bootstrap: str | None = BootstrapOption,
    scale_size: list[int] = typer.Option(  # noqa: B008 - typer declares options this way
        [10_000, 10_000_000], help="Board sizes for the scale part (repeat the option)."
    ),
    no_scale: bool = typer.Option(False, "--no-scale", help="Skip the board-size scale part."),
) -> None:
    """Scoring on the runtime vs empty pipelines and one Redis round trip per event; board scale."""
    from bench import leaderboards

    sizes = () if no_scale else tuple(scale_size)
    _emit(
        leaderboards.run, ctx, events=events, rounds=rounds, bootstrap=bootstrap, scale_sizes=sizes
    )


@bench_app.command("rewards")
def bench_rewards(
    ctx: typer.Context,
    events: int = EventsOption,
    rounds: int = RoundsOption,
    bootstrap: str | None = BootstrapOption,
    max_records: int = typer.Option(500, min=1, help="Events per batch (and per transaction)."),
) -> None:
    """Rewards on the runtime vs batched MySQL inserts (ceiling) and one transaction per event."""
    from bench import rewards

    _emit(
        rewards.run, ctx, events=events, rounds=rounds, bootstrap=bootstrap, max_records=max_records
    )
