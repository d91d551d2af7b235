"""The MySQL side of a batch: read what settlement needs under lock, then write its rows.

Everything runs on the caller's cursor inside the caller's single transaction (processor.py):
`claim_durably` -> `load_segments` -> `load_state` -> settle -> `write_settlement` -> commit.
Writes are multi-row statements (`insert_rows`), so a batch costs a handful of round trips
whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any

import aiomysql
import pymysql

from workers.errors import TransientError
from workers.processors.rewards.grants import SOURCE, AssetKind, GrantRecord, LedgerRow
from workers.processors.rewards.plan import ClawbackPlan, Decision, GrantPlan
from workers.processors.rewards.settings import NegativeBalancePolicy
from workers.processors.rewards.settle import (
    BatchState,
    CapKey,
    Settlement,
    WalletKey,
    needed_state,
)

LEDGER_COLUMNS = (
    "grant_id, player_id, asset_kind, asset_id, amount, reason, source, idempotency_key, "
    "source_event_id, rule_id, rule_version, campaign_id, campaign_version, purchase_ref, "
    "reverses_grant_id"
)
_DUPLICATE_ENTRY = 1062
#: Rows per INSERT statement: ~300 KB for ledger rows, far below max_allowed_packet.
_ROWS_PER_STATEMENT = 1000
#: Per asset kind: the derived table, its asset column and its (generated) amount column.
WALLET_TABLES: dict[AssetKind, tuple[str, str, str]] = {
    AssetKind.CURRENCY: ("wallet_balances", "currency", "balance"),
    AssetKind.ITEM: ("inventory_items", "item_id", "quantity"),
}


def _marks(values: Sequence[object]) -> str:
    return ", ".join(["%s"] * len(values))


async def insert_rows(
    cursor: aiomysql.Cursor, head: str, rows: Sequence[Sequence[object]], tail: str = ""
) -> None:
    """`head VALUES (...), (...) tail`, up to _ROWS_PER_STATEMENT rows per statement.

    Values are rendered by the driver's own string escaping. aiomysql's executemany does the
    same through a generic per-value dispatch that took a quarter of handle()'s Python time;
    our values are only str, int, date or None, so a direct rendering is enough.
    """
    escape: Callable[[str], str] = cursor.connection.escape_string

    def literal(value: object) -> str:
        if value is None:
            return "NULL"
        if type(value) is int:
            return str(value)
        if type(value) is str:
            return "'" + escape(value) + "'"
        if type(value) is date:
            return "'" + value.isoformat() + "'"
        raise TypeError(f"no SQL literal for {type(value).__name__}")

    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        values = ", ".join("(" + ", ".join(map(literal, row)) + ")" for row in chunk)
        await cursor.execute(f"{head} VALUES {values}{tail}")


def row_from_db(values: Sequence[Any]) -> LedgerRow:
    """A LedgerRow from a SELECT of LEDGER_COLUMNS, in that order."""
    (grant_id, player, kind, asset, amount, reason, source, key, event_id) = values[:9]
    (rule_id, rule_version, campaign_id, campaign_version, ref, reverses) = values[9:15]
    return LedgerRow(
        grant_id=grant_id,
        player_id=player,
        asset_kind=AssetKind(kind),
        asset_id=asset,
        amount=int(amount),
        reason=reason,
        idempotency_key=key,
        source_event_id=event_id,
        rule_id=rule_id,
        rule_version=rule_version,
        campaign_id=campaign_id,
        campaign_version=campaign_version,
        purchase_ref=ref,
        reverses_grant_id=reverses,
        source=source,
    )


def _row_to_db(row: LedgerRow) -> tuple[object, ...]:
    return (
        row.grant_id,
        row.player_id,
        row.asset_kind.value,
        row.asset_id,
        row.amount,
        row.reason,
        row.source,
        row.idempotency_key,
        row.source_event_id,
        row.rule_id,
        row.rule_version,
        row.campaign_id,
        row.campaign_version,
        row.purchase_ref,
        row.reverses_grant_id,
    )


async def load_segments(
    cursor: aiomysql.Cursor, player_ids: Iterable[str]
) -> dict[str, frozenset[str]]:
    players = sorted(set(player_ids))
    if not players:
        return {}
    await cursor.execute(
        f"SELECT player_id, segment FROM player_segments WHERE player_id IN ({_marks(players)})",  # noqa: S608 - only placeholders added
        players,
    )
    found: dict[str, set[str]] = defaultdict(set)
    for player, segment in await cursor.fetchall():
        found[player].add(segment)
    return {player: frozenset(segments) for player, segments in found.items()}


async def _purchase_rows(
    cursor: aiomysql.Cursor, refs: set[str]
) -> dict[str, tuple[LedgerRow, ...]]:
    if not refs:
        return {}
    ordered = sorted(refs)
    await cursor.execute(
        f"SELECT {LEDGER_COLUMNS} FROM reward_ledger "  # noqa: S608 - only placeholders added
        f"WHERE purchase_ref IN ({_marks(ordered)}) ORDER BY id FOR UPDATE",
        ordered,
    )
    found: dict[str, list[LedgerRow]] = defaultdict(list)
    for values in await cursor.fetchall():
        row = row_from_db(values)
        found[row.purchase_ref or ""].append(row)
    return {ref: tuple(rows) for ref, rows in found.items()}


async def _nets(cursor: aiomysql.Cursor, keys: set[WalletKey]) -> dict[WalletKey, int]:
    """The net of each wallet/inventory entry, rows locked until commit."""
    nets: dict[WalletKey, int] = {}
    for kind, (table, asset_column, _) in WALLET_TABLES.items():
        wanted = {key for key in keys if key[1] is kind}
        players = sorted({player for player, _, _ in wanted})
        if not players:
            continue
        await cursor.execute(
            f"SELECT player_id, {asset_column}, net FROM {table} "  # noqa: S608 - table and columns from WALLET_TABLES
            f"WHERE player_id IN ({_marks(players)}) FOR UPDATE",
            players,
        )
        for player, asset, net in await cursor.fetchall():
            if (player, kind, asset) in wanted:
                nets[(player, kind, asset)] = int(net)
    return nets


async def _cap_counts(cursor: aiomysql.Cursor, keys: set[CapKey]) -> dict[CapKey, int]:
    if not keys:
        return {}
    players = sorted({player for player, _, _ in keys})
    days = sorted({day for _, day, _ in keys})
    await cursor.execute(
        "SELECT player_id, day, reward_type, grants FROM reward_daily_counts "  # noqa: S608 - only placeholders added
        f"WHERE player_id IN ({_marks(players)}) AND day IN ({_marks(days)}) FOR UPDATE",
        (*players, *days),
    )
    return {
        (player, day, kind): int(grants)
        for player, day, kind, grants in await cursor.fetchall()
        if (player, day, kind) in keys
    }


async def load_state(
    cursor: aiomysql.Cursor, decisions: Sequence[Decision], policy: NegativeBalancePolicy
) -> BatchState:
    """Read (and lock) what settling these decisions needs.

    Grants never read the wallet: they add deltas. Only the `reject` policy needs the current
    nets, of the entries a refund would debit.
    """
    caps, refs = needed_state(decisions)
    purchases = await _purchase_rows(cursor, refs)
    wallets: set[WalletKey] = set()
    refunded = {d.purchase_ref for d in decisions if isinstance(d, ClawbackPlan)}
    if policy == "reject" and refunded:
        for ref in refunded:
            for row in purchases.get(ref, ()):
                wallets.add((row.player_id, row.asset_kind, row.asset_id))
        for decision in decisions:
            # A purchase refunded within its own batch: its entries too.
            if isinstance(decision, GrantPlan) and decision.action.purchase_ref in refunded:
                player = decision.event.player_id
                wallets.update((player, spec.kind, spec.asset) for spec in decision.grants)
    return BatchState(
        cap_counts=await _cap_counts(cursor, caps),
        nets=await _nets(cursor, wallets),
        purchase_rows=purchases,
    )


async def write_settlement(cursor: aiomysql.Cursor, processor: str, out: Settlement) -> None:
    """Write ledger rows, derived wallet rows, cap counters and refusals; release claims."""
    if out.ledger_rows:
        try:
            await insert_rows(
                cursor,
                f"INSERT INTO reward_ledger ({LEDGER_COLUMNS})",
                [_row_to_db(row) for row in out.ledger_rows],
            )
        except pymysql.err.IntegrityError as exc:
            if exc.args and exc.args[0] == _DUPLICATE_ENTRY:
                # A concurrent transaction fulfilled or refunded the same purchase under
                # another key; once it commits, the retry sees its rows and reports that.
                raise TransientError(f"concurrent grant of the same purchase: {exc}") from exc
            raise
    for kind, (table, asset_column, _) in WALLET_TABLES.items():
        # Sorted, so concurrent batches lock shared rows in the same order: no deadlock.
        values = sorted(
            (player, asset, delta)
            for (player, asset_kind, asset), delta in out.deltas.items()
            if asset_kind is kind
        )
        if values:
            await insert_rows(
                cursor,
                f"INSERT INTO {table} (player_id, {asset_column}, net)",
                values,
                " ON DUPLICATE KEY UPDATE net = net + VALUES(net)",
            )
    if out.cap_increments:
        await insert_rows(
            cursor,
            "INSERT INTO reward_daily_counts (player_id, day, reward_type, grants)",
            sorted((p, day, kind, n) for (p, day, kind), n in out.cap_increments.items()),
            " ON DUPLICATE KEY UPDATE grants = grants + VALUES(grants)",
        )
    if out.refusals:
        await insert_rows(
            cursor,
            "INSERT INTO reward_refusals (source, idempotency_key, player_id, source_event_id, "
            "reason, detail, rule_id, rule_version)",
            [
                (
                    SOURCE,
                    r.event.idempotency_key,
                    r.event.player_id,
                    r.event.event_id,
                    r.code.value,
                    r.detail[:255],
                    r.rule.id if r.rule else None,
                    r.rule.version if r.rule else None,
                )
                for r in out.refusals
            ],
        )
    if out.unclaimed:
        await cursor.execute(
            "DELETE FROM processed_events "  # noqa: S608 - only placeholders added
            f"WHERE processor = %s AND idempotency_key IN ({_marks(out.unclaimed)})",
            (processor, *out.unclaimed),
        )


async def load_grants(
    cursor: aiomysql.Cursor, idempotency_keys: Sequence[str]
) -> dict[str, GrantRecord]:
    """The grants already written for these events, to publish their RewardGranted again.

    A worker can die after the commit and before the broker acknowledged the output; the
    redelivered event is then a durable duplicate, and its output must not be lost.
    """
    if not idempotency_keys:
        return {}
    await cursor.execute(
        f"SELECT {LEDGER_COLUMNS} FROM reward_ledger "  # noqa: S608 - only placeholders added
        f"WHERE source = %s AND idempotency_key IN ({_marks(idempotency_keys)}) ORDER BY id",
        (SOURCE, *idempotency_keys),
    )
    rows: dict[str, list[LedgerRow]] = defaultdict(list)
    for values in await cursor.fetchall():
        row = row_from_db(values)
        rows[row.idempotency_key].append(row)
    return {key: GrantRecord(tuple(found)) for key, found in rows.items()}
