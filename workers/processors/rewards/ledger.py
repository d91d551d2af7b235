"""The MySQL side of a batch: read what settlement needs under lock, then write its rows.

Everything runs on the caller's cursor inside the caller's single transaction (processor.py):
`claim` -> `load_segments` -> `load_state` -> settle -> `write_ledger` and the
`derived_statements` -> commit.
Writes are multi-row statements (sql.insert_rows), so a batch costs a handful of round trips
whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import aiomysql
import pymysql

from schemas.liveops.v1.envelope_pb2 import Envelope
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
    spent_wallets,
)
from workers.processors.rewards.sql import (
    execute_together,
    fetch_together,
    insert_rows,
    render_rows,
    render_statements,
)
from workers.runtime.durable import claim_durably

#: reward_ledger's columns as LedgerRow's fields, in the same order: a LedgerRow is a row.
LEDGER_COLUMNS = ", ".join(LedgerRow._fields)
_DUPLICATE_ENTRY = 1062
#: The isolation of a batch's transaction. Locking reads take no gap locks at READ COMMITTED,
#: so concurrent batches inserting new keys (ULIDs all land at the end of the index) do not
#: deadlock; wallet and counter writes are relative, so nothing is lost.
READ_COMMITTED = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"
#: Per asset kind: the derived table, its asset column and its (generated) amount column.
WALLET_TABLES: dict[AssetKind, tuple[str, str, str]] = {
    AssetKind.CURRENCY: ("wallet_balances", "currency", "balance"),
    AssetKind.ITEM: ("inventory_items", "item_id", "quantity"),
}
#: The batch's writes, head and tail of each multi-row INSERT (the rewards bench's same_rows
#: reference replays its rows with these very statements).
CLAIM_INSERT = "INSERT INTO processed_events (processor, idempotency_key, event_id)"
LEDGER_INSERT = f"INSERT INTO reward_ledger ({LEDGER_COLUMNS})"
WALLET_INSERTS: dict[AssetKind, str] = {
    kind: f"INSERT INTO {table} (player_id, {asset_column}, net)"
    for kind, (table, asset_column, _) in WALLET_TABLES.items()
}
WALLET_UPSERT = " ON DUPLICATE KEY UPDATE net = net + VALUES(net)"
COUNTER_INSERT = "INSERT INTO reward_daily_counts (player_id, day, reward_type, grants)"
COUNTER_UPSERT = " ON DUPLICATE KEY UPDATE grants = grants + VALUES(grants)"
REFUSAL_COLUMNS = (
    "source, idempotency_key, player_id, source_event_id, reason, detail, rule_id, rule_version"
)
REFUSAL_INSERT = f"INSERT INTO reward_refusals ({REFUSAL_COLUMNS})"


def _marks(values: Sequence[object]) -> str:
    return ", ".join(["%s"] * len(values))


async def claim(
    cursor: aiomysql.Cursor, processor: str, envelopes: Sequence[Envelope]
) -> list[Envelope]:
    """Open the batch's transaction at READ COMMITTED (READ_COMMITTED) and make the durable
    claim of `claim_durably` (same rows, same result), both in one round trip when no key was
    claimed before, which is nearly always.

    All keys go in one INSERT (one statement even past sql's rows per statement: a failing
    later chunk would leave earlier ones claimed by us, and the fallback would take them for
    duplicates). A duplicate key fails the whole statement and nothing of it stays; then the
    fallback reads (and locks) the existing rows and inserts the rest. A concurrent worker's
    uncommitted row for the same key makes this INSERT wait for that transaction, as its
    SELECT ... FOR UPDATE would.
    """
    by_key: dict[str, Envelope] = {}
    for envelope in envelopes:
        by_key.setdefault(envelope.idempotency_key, envelope)
    if not by_key:
        await cursor.execute(READ_COMMITTED)
        return []
    # Sorted, so two workers claiming overlapping keys lock them in the same order.
    rows = sorted((processor, key, envelope.event_id) for key, envelope in by_key.items())
    insert = render_statements(cursor, CLAIM_INSERT, rows, per_statement=len(rows))
    try:
        # The SET applies to the transaction the INSERT starts; if the INSERT fails, that
        # transaction is open all the same, at READ COMMITTED, for the fallback.
        await execute_together(cursor, [READ_COMMITTED, *insert])
    except pymysql.err.IntegrityError as exc:
        if exc.args and exc.args[0] == _DUPLICATE_ENTRY:
            return await claim_durably(cursor, processor, envelopes)
        raise
    return list(by_key.values())


def row_from_db(values: Sequence[Any]) -> LedgerRow:
    """A LedgerRow from a SELECT of LEDGER_COLUMNS, in that order."""
    row = LedgerRow._make(values[:15])
    return row._replace(asset_kind=AssetKind(row.asset_kind), amount=int(row.amount))


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


def _purchase_query(cursor: aiomysql.Cursor, refs: set[str]) -> str:
    """The ledger rows of these purchases, locked until commit (ORDER BY id: in grant order)."""
    return (
        f"SELECT {LEDGER_COLUMNS} FROM reward_ledger "  # noqa: S608 - rendered literals
        f"WHERE purchase_ref IN ({render_rows(cursor, [(ref,) for ref in sorted(refs)])}) "
        "ORDER BY id FOR UPDATE"
    )


def _purchases_of(rows: Iterable[Sequence[Any]]) -> dict[str, tuple[LedgerRow, ...]]:
    found: dict[str, list[LedgerRow]] = defaultdict(list)
    for values in rows:
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


def _cap_queries(cursor: aiomysql.Cursor, keys: set[CapKey]) -> list[tuple[date, str]]:
    """Per day, the query of exactly these counters (a range read on the primary key per
    key), locked until commit; a player's other reward types are neither read nor locked.

    One query per day (a batch nearly always spans one; days in order, so workers lock in
    the same order), the day rendered as text and not read back: a date column costs a
    Python conversion per value both ways, and this read runs for every batch."""
    by_day: dict[date, list[tuple[str, str, str]]] = defaultdict(list)
    for player, day, kind in keys:
        by_day[day].append((player, day.isoformat(), kind))
    return [
        (
            day,
            "SELECT player_id, reward_type, grants FROM reward_daily_counts "  # noqa: S608 - rendered literals
            f"WHERE (player_id, day, reward_type) IN ({render_rows(cursor, sorted(by_day[day]))}) "
            "FOR UPDATE",
        )
        for day in sorted(by_day)
    ]


async def load_state(
    cursor: aiomysql.Cursor,
    decisions: Sequence[Decision],
    policy: NegativeBalancePolicy,
    *,
    spends: NegativeBalancePolicy = "reject",
) -> BatchState:
    """Read (and lock) what settling these decisions needs.

    Grants never read the wallet: they add deltas. Only the `reject` policy needs the current
    nets: `policy` (claw-backs) of the entries a refund would debit, `spends` of those a shop
    spend would; read FOR UPDATE, so that a concurrent batch cannot spend the same coins
    before this one commits.
    """
    caps, refs = needed_state(decisions)
    # Purchases and counters in one round trip: the first read of a batch waits for the
    # COMMIT of the batch before (its rows are locked until then), on the batch's critical path.
    purchase_query = [_purchase_query(cursor, refs)] if refs else []
    cap_queries = _cap_queries(cursor, caps)
    results = await fetch_together(cursor, [*purchase_query, *(q for _, q in cap_queries)])
    purchases = _purchases_of(results[0]) if refs else {}
    counts: dict[CapKey, int] = {}
    for (day, _), rows in zip(cap_queries, results[len(purchase_query) :], strict=True):
        for player, kind, grants in rows:
            counts[(player, day, kind)] = grants
    wallets: set[WalletKey] = spent_wallets(decisions) if spends == "reject" else set()
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
        cap_counts=counts,
        nets=await _nets(cursor, wallets),
        purchase_rows=purchases,
    )


async def write_ledger(cursor: aiomysql.Cursor, out: Settlement) -> None:
    """The settlement's ledger rows (the first and largest write of a batch)."""
    if not out.ledger_rows:
        return
    try:
        await insert_rows(cursor, LEDGER_INSERT, out.ledger_rows)
    except pymysql.err.IntegrityError as exc:
        if exc.args and exc.args[0] == _DUPLICATE_ENTRY:
            # A concurrent transaction fulfilled or refunded the same purchase under
            # another key; once it commits, the retry sees its rows and reports that.
            raise TransientError(f"concurrent grant of the same purchase: {exc}") from exc
        raise


def derived_statements(cursor: aiomysql.Cursor, processor: str, out: Settlement) -> list[str]:
    """The rest of the settlement's writes, rendered without I/O (so while the ledger rows
    are being written): wallet and inventory deltas, cap counters, refusals, and the release
    of the claims of events that will come back."""
    statements: list[str] = []
    for kind, head in WALLET_INSERTS.items():
        # Sorted, so concurrent batches lock shared rows in the same order: no deadlock.
        values = sorted(
            (player, asset, delta)
            for (player, asset_kind, asset), delta in out.deltas.items()
            if asset_kind is kind
        )
        statements += render_statements(cursor, head, values, WALLET_UPSERT)
    statements += render_statements(
        cursor,
        COUNTER_INSERT,
        sorted((p, day, kind, n) for (p, day, kind), n in out.cap_increments.items()),
        COUNTER_UPSERT,
    )
    statements += render_statements(
        cursor,
        REFUSAL_INSERT,
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
        keys = render_rows(cursor, [(processor, key) for key in out.unclaimed])
        statements.append(
            "DELETE FROM processed_events "  # noqa: S608 - rendered literals
            f"WHERE (processor, idempotency_key) IN ({keys})"
        )
    return statements


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
