"""Reading the ledger for people: verify it against the wallet, show wallets and recent grants.

`find_mismatches` is the heart of `liveops rewards verify`: wallet and inventory rows are
derived data, so every (player, asset) must satisfy `net = SUM(ledger amounts)` (the balance
and debt players see are generated from net). It reads one consistent snapshot, so grants
committed while it runs cannot show up as false mismatches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import aiomysql

from workers.processors.rewards.grants import AssetKind, LedgerRow
from workers.processors.rewards.ledger import LEDGER_COLUMNS, WALLET_TABLES, row_from_db


@dataclass(frozen=True, slots=True)
class Mismatch:
    player_id: str
    asset_kind: AssetKind
    asset_id: str
    ledger_net: int
    #: None when the wallet/inventory row is missing.
    wallet_net: int | None

    def describe(self) -> str:
        where = f"{self.player_id} {self.asset_kind.value} {self.asset_id}"
        have = "no wallet row" if self.wallet_net is None else f"wallet says {self.wallet_net}"
        return f"{where}: ledger says {self.ledger_net}, {have}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ledger_rows: int
    entries: int
    mismatches: tuple[Mismatch, ...]

    @property
    def consistent(self) -> bool:
        return not self.mismatches


def _mismatch_query(table: str, asset: str) -> str:
    ledger = (
        "SELECT player_id, asset_id, SUM(amount) AS net FROM reward_ledger "
        "WHERE asset_kind = %s GROUP BY player_id, asset_id"
    )
    return (
        f"SELECT l.player_id, l.asset_id, l.net, w.net "  # noqa: S608 - names from WALLET_TABLES
        f"FROM ({ledger}) AS l LEFT JOIN {table} AS w "
        f"ON w.player_id = l.player_id AND w.{asset} = l.asset_id "
        f"WHERE (w.player_id IS NULL AND l.net <> 0) OR w.net <> l.net "
        f"UNION ALL "
        f"SELECT w.player_id, w.{asset}, 0, w.net FROM {table} AS w "
        f"WHERE w.net <> 0 AND NOT EXISTS ("
        f"SELECT 1 FROM reward_ledger AS r WHERE r.asset_kind = %s "
        f"AND r.player_id = w.player_id AND r.asset_id = w.{asset})"
    )


async def find_mismatches(conn: aiomysql.Connection) -> VerifyReport:
    """Every (player, asset) whose wallet or inventory row disagrees with the ledger."""
    mismatches: list[Mismatch] = []
    async with conn.cursor() as cursor:
        await cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        try:
            await cursor.execute("SELECT COUNT(*) FROM reward_ledger")
            (ledger_rows,) = await cursor.fetchone()
            entries = 0
            for kind, (table, asset, _) in WALLET_TABLES.items():
                await cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - constant name
                entries += int((await cursor.fetchone())[0])
                await cursor.execute(_mismatch_query(table, asset), (kind, kind))
                mismatches += [
                    Mismatch(player, kind, asset_id, int(net), None if have is None else int(have))
                    for player, asset_id, net, have in await cursor.fetchall()
                ]
        finally:
            await conn.rollback()
    return VerifyReport(int(ledger_rows), entries, tuple(mismatches))


@dataclass(frozen=True, slots=True)
class WalletEntry:
    kind: AssetKind
    asset_id: str
    amount: int
    debt: int


async def wallet_of(cursor: aiomysql.Cursor, player_id: str) -> list[WalletEntry]:
    """A player's currencies, then items, by asset id."""
    entries: list[WalletEntry] = []
    for kind, (table, asset, amount) in WALLET_TABLES.items():
        await cursor.execute(
            f"SELECT {asset}, {amount}, debt FROM {table} "  # noqa: S608 - names from WALLET_TABLES
            f"WHERE player_id = %s ORDER BY {asset}",
            (player_id,),
        )
        entries += [
            WalletEntry(kind, asset_id, int(have), int(debt))
            for asset_id, have, debt in await cursor.fetchall()
        ]
    return entries


async def recent_grants(
    cursor: aiomysql.Cursor, *, limit: int = 20, player_id: str | None = None
) -> list[tuple[datetime, LedgerRow]]:
    """The latest ledger rows, newest first, optionally of one player."""
    where = "WHERE player_id = %s " if player_id else ""
    params: tuple[object, ...] = (player_id, limit) if player_id else (limit,)
    await cursor.execute(
        f"SELECT {LEDGER_COLUMNS}, created_at FROM reward_ledger "  # noqa: S608 - constant columns
        f"{where}ORDER BY id DESC LIMIT %s",
        params,
    )
    return [(values[15], row_from_db(values)) for values in await cursor.fetchall()]
