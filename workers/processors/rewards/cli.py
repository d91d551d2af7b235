"""`liveops rewards ...`: verify the ledger, show a wallet and recent grants, check rules."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import aiomysql
import pymysql
import typer

from workers.db import MySQLTarget, create_pool
from workers.processors.rewards.audit import find_mismatches, recent_grants, wallet_of
from workers.processors.rewards.errors import RulesFileError
from workers.processors.rewards.rules import load_rule_book
from workers.processors.rewards.settings import PACKAGED_RULES
from workers.settings import FleetSettings

rewards_app = typer.Typer(help="The rewards ledger, wallets and rules.", no_args_is_help=True)
rules_app = typer.Typer(help="The rules and campaigns file.", no_args_is_help=True)
rewards_app.add_typer(rules_app, name="rules")

T = TypeVar("T")


def _run_with_pool(ctx: typer.Context, work: Callable[[aiomysql.Pool], Awaitable[T]]) -> T:
    settings: FleetSettings = ctx.obj
    target = MySQLTarget.from_dsn(settings.mysql.dsn.get_secret_value())

    async def main() -> T:
        pool = await create_pool(target, maxsize=2)
        try:
            return await work(pool)
        finally:
            pool.close()
            await pool.wait_closed()

    try:
        return asyncio.run(main())
    except (pymysql.err.MySQLError, OSError) as exc:
        # One line, not a traceback: usually a wrong DSN or a database without migrations.
        typer.echo(f"liveops rewards: mysql: {exc}", err=True)
        raise typer.Exit(2) from None


@rewards_app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Recompute every balance from the ledger; list each mismatch; exit 1 if there is one."""

    async def work(pool: aiomysql.Pool) -> None:
        async with pool.acquire() as conn:
            report = await find_mismatches(conn)
        for mismatch in report.mismatches:
            typer.echo(f"MISMATCH {mismatch.describe()}")
        verdict = "consistent" if report.consistent else f"{len(report.mismatches)} mismatches"
        typer.echo(
            f"ledger {verdict}: {report.ledger_rows} ledger rows, "
            f"{report.entries} wallet and inventory entries"
        )
        if not report.consistent:
            raise typer.Exit(1)

    _run_with_pool(ctx, work)


@rewards_app.command("wallet")
def wallet(
    ctx: typer.Context,
    player_id: str,
    limit: Annotated[int, typer.Option(help="How many recent grants to show.")] = 10,
) -> None:
    """A player's balances, debts, items and latest grants."""

    async def work(pool: aiomysql.Pool) -> None:
        async with pool.acquire() as conn, conn.cursor() as cursor:
            entries = await wallet_of(cursor, player_id)
            grants = await recent_grants(cursor, limit=limit, player_id=player_id)
            await conn.rollback()
        typer.echo(f"wallet of {player_id}:")
        for entry in entries or []:
            debt = f" (debt {entry.debt})" if entry.debt else ""
            typer.echo(f"  {entry.kind.value:8} {entry.asset_id:20} {entry.amount}{debt}")
        if not entries:
            typer.echo("  (empty)")
        typer.echo("recent grants:")
        for created_at, row in grants:
            campaign = (
                f" campaign {row.campaign_id} v{row.campaign_version}" if row.campaign_id else ""
            )
            typer.echo(
                f"  {created_at:%Y-%m-%d %H:%M:%S} {row.amount:+d} {row.asset_id} "
                f"for {row.reason} (rule {row.rule_id} v{row.rule_version}{campaign})"
            )

    _run_with_pool(ctx, work)


@rules_app.command("check")
def rules_check(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="Rules file to check (default: the one in force).")
    ] = None,
) -> None:
    """Validate a rules file before shipping it; exit 1 with the first problem."""
    if path is None:
        settings: FleetSettings | None = ctx.obj
        path = settings.rewards.rules_path if settings is not None else PACKAGED_RULES
    try:
        book = load_rule_book(path)
    except RulesFileError as exc:
        typer.echo(f"invalid: {exc}", err=True)
        raise typer.Exit(1) from None
    live = sum(1 for rule in book.rules if not rule.retired)
    typer.echo(
        f"ok: {live} rules ({len(book.rules) - live} retired), {len(book.caps)} caps, "
        f"{len(book.campaigns)} campaigns"
    )
