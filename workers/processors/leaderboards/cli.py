"""`liveops leaderboards ...`: list the boards, show a top, rebuild a board, close a period."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import aiomysql
import redis.asyncio as aioredis
import typer

from workers.db import MySQLTarget, create_pool
from workers.errors import WorkerError
from workers.processors.leaderboards import closing, reads
from workers.processors.leaderboards.definitions import (
    Definitions,
    LeaderboardDefinition,
    load_definitions,
)
from workers.processors.leaderboards.factory import leaderboard_settings
from workers.processors.leaderboards.periods import LeaderboardPeriod, period_at, period_named
from workers.processors.leaderboards.rebuild import rebuild_board
from workers.runtime.outbox import Outbox
from workers.runtime.processor import OutputEvent
from workers.runtime.records import OutboundRecord
from workers.settings import FleetSettings

leaderboards_app = typer.Typer(
    help="Leaderboards: definitions, tops, rebuilds and period closing.", no_args_is_help=True
)
T = TypeVar("T")
DefinitionsOption = Annotated[
    Path | None,
    typer.Option("--definitions", help="Definitions file (default: the configured one)."),
]
PeriodOption = Annotated[
    str | None, typer.Option("--period", help="Period key, e.g. 2026-W48 (default: current).")
]


def _definitions(ctx: typer.Context, path: Path | None) -> Definitions:
    settings: FleetSettings = ctx.obj
    try:
        return load_definitions(path or leaderboard_settings(settings).definitions_path)
    except WorkerError as exc:
        typer.echo(f"invalid definitions: {exc}", err=True)
        raise typer.Exit(2) from None


def _board_and_period(
    definitions: Definitions, board_id: str, period_key: str | None
) -> tuple[LeaderboardDefinition, LeaderboardPeriod]:
    board = definitions.get(board_id)
    if board is None:
        known = ", ".join(b.id for b in definitions)
        typer.echo(f"no leaderboard {board_id!r}; known: {known}", err=True)
        raise typer.Exit(2)
    if period_key is None:
        return board, period_at(board, datetime.now(UTC))
    try:
        return board, period_named(board, period_key)
    except WorkerError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@contextlib.asynccontextmanager
async def _connections(
    settings: FleetSettings,
) -> AsyncIterator[tuple[aioredis.Redis, aiomysql.Pool]]:
    client = aioredis.Redis.from_url(settings.redis.url.get_secret_value())
    pool = await create_pool(MySQLTarget.from_dsn(settings.mysql.dsn.get_secret_value()), maxsize=2)
    try:
        yield client, pool
    finally:
        pool.close()
        await pool.wait_closed()
        await client.aclose()


def _run(ctx: typer.Context, work: Callable[[aioredis.Redis, aiomysql.Pool], Awaitable[T]]) -> T:
    settings: FleetSettings = ctx.obj

    async def main() -> T:
        async with _connections(settings) as (client, pool):
            return await work(client, pool)

    try:
        return asyncio.run(main())
    except WorkerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@leaderboards_app.command("list")
def list_boards(ctx: typer.Context, definitions_path: DefinitionsOption = None) -> None:
    """Every board of the definitions file, with its current period and next reset."""
    definitions = _definitions(ctx, definitions_path)
    now = datetime.now(UTC)
    typer.echo(f"definitions version {definitions.version}: {len(definitions)} leaderboards")
    for board in definitions:
        period = period_at(board, now)
        schedule = f"cron '{board.cron}'" if board.reset == "cron" else board.reset
        limit = board.max_submissions_per_period or "unlimited"
        resets = period.ends_at.isoformat() if period.ends_at else "never"
        typer.echo(
            f"  {board.id:24} {board.operator:9} {board.better}-is-better, resets {schedule} "
            f"({board.timezone}); scores {board.min_score}..{board.max_score}, "
            f"{limit} per period; archives top {board.archive_top_n}; "
            f"period {period.key} resets {resets}"
        )


@leaderboards_app.command("top")
def show_top(
    ctx: typer.Context,
    board_id: str,
    period: PeriodOption = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 10,
    definitions_path: DefinitionsOption = None,
) -> None:
    """The top of a board, read from Redis."""
    board, chosen = _board_and_period(_definitions(ctx, definitions_path), board_id, period)
    settings: FleetSettings = ctx.obj

    async def work(client: aioredis.Redis, _: aiomysql.Pool) -> reads.BoardView:
        return await reads.read_top(
            client, prefix=settings.redis.key_prefix, board=board, period=chosen, limit=limit
        )

    view = _run(ctx, work)
    typer.echo(f"{board.id} {view.period}: {view.total_players} players")
    for entry in view.entries:
        typer.echo(f"  {entry.rank:>5}  {entry.player_id:32} {entry.score}")


@leaderboards_app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    board_id: str,
    period: PeriodOption = None,
    definitions_path: DefinitionsOption = None,
) -> None:
    """Rebuild a board's sorted set from MySQL (stop its workers first; see rebuild.py)."""
    board, chosen = _board_and_period(_definitions(ctx, definitions_path), board_id, period)
    settings: FleetSettings = ctx.obj

    async def work(client: aioredis.Redis, pool: aiomysql.Pool) -> int:
        report = await rebuild_board(
            client, pool, prefix=settings.redis.key_prefix, board=board, period=chosen
        )
        return report.players

    players = _run(ctx, work)
    typer.echo(f"rebuilt {board.id} {chosen.key}: {players} players")


async def publish(settings: FleetSettings, outputs: tuple[OutputEvent, ...]) -> None:
    """Send events and wait for the broker's acks (the runtime's Outbox)."""
    async with Outbox(settings.kafka) as outbox:
        await outbox.send_all([OutboundRecord.of_output(o) for o in outputs])


@leaderboards_app.command("close")
def close(
    ctx: typer.Context,
    board_id: str,
    period: Annotated[str, typer.Option("--period", help="The period to close, e.g. 2026-W48.")],
    force: Annotated[bool, typer.Option(help="Close even if the period has not ended.")] = False,
    announce: Annotated[
        bool, typer.Option(help="Publish the prize events (same ids on every run).")
    ] = True,
    definitions_path: DefinitionsOption = None,
) -> None:
    """Archive a period's top entries with final ranks and publish its prize events."""
    definitions = _definitions(ctx, definitions_path)
    board, chosen = _board_and_period(definitions, board_id, period)
    settings: FleetSettings = ctx.obj

    async def work(client: aioredis.Redis, pool: aiomysql.Pool) -> closing.ClosedPeriod:
        closed = await closing.close_period(
            client,
            pool,
            prefix=settings.redis.key_prefix,
            board=board,
            period=chosen,
            definitions_version=definitions.version,
            now=datetime.now(UTC),
            force=force,
        )
        if announce:
            if closed.outputs:
                await publish(settings, closed.outputs)
            # Acknowledged: the workers' lazy closer need not announce this period again.
            await closing.mark_announced(client, settings.redis.key_prefix, board, chosen)
        return closed

    closed = _run(ctx, work)
    state = "closed" if closed.newly_closed else "was already closed"
    typer.echo(f"{board.id} {chosen.key} {state}; {len(closed.entries)} entries archived")
    for entry in closed.entries:
        typer.echo(f"  {entry.final_rank:>5}  {entry.player_id:32} {entry.score}")
    if announce:
        typer.echo(f"published {len(closed.outputs)} prize events")
