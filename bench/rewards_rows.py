"""`same_rows`, a reference of `liveops bench rewards`: the rows the processor writes, and
nothing else, written as fast as MySQL takes them.

The issue's `ceiling` writes one ledger row and one wallet upsert per event. For the same
events the processor writes more, because the issue asks for more:
- a durable claim per event;
- the ledger rows of every grant (some rules grant two assets);
- a wallet upsert per player and asset;
- a daily cap counter;
- a refusal row for each event that earns nothing.
This reference writes exactly those rows with no rules, no reads and no Kafka. It shows how
much of the gap to the ceiling is the rows themselves, and how much is the processor's work.

It is measured in three steps, inside one child process:
1. The real processor (bench.rewards.measure_subject) runs once on a scratch database, not
   timed.
2. Its claims, ledger rows and refusals are read back. For each 500 events, in offset order
   of the bench's keys, the wallet deltas and cap counters are derived from them. One cap
   counter upsert is written per player, day and reason; the processor keys it by reward
   type, which gives as many rows or fewer.
3. These rows are written into a fresh database and timed: one transaction per 500 events,
   all of a transaction's statements in one round trip (multi-statements), with the
   processor's own statement builder.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import pymysql

from bench.child import result
from workers.db import MySQLTarget, create_pool
from workers.processors.rewards import ledger
from workers.processors.rewards.grants import AssetKind
from workers.processors.rewards.ledger import LEDGER_COLUMNS, REFUSAL_COLUMNS
from workers.processors.rewards.sql import execute_together, render_statements

Row = tuple[Any, ...]
_COLUMNS = LEDGER_COLUMNS.split(", ")
_KEY, _PLAYER, _KIND, _ASSET, _AMOUNT, _REASON = (
    _COLUMNS.index(name)
    for name in ("idempotency_key", "player_id", "asset_kind", "asset_id", "amount", "reason")
)


def _event_number(idempotency_key: str) -> int:
    """The n of the bench's `bench-{n}` keys (bench.rewards.realistic_envelopes)."""
    return int(idempotency_key.rsplit("-", 1)[1])


def _read_back(target: MySQLTarget) -> tuple[list[Row], list[Row], list[Row]]:
    """The claims, ledger rows and refusals the processor wrote."""
    with pymysql.connect(
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        database=target.database,
    ) as connection:
        cursor = connection.cursor()
        cursor.execute("SELECT processor, idempotency_key, event_id FROM processed_events")
        claims = list(cursor.fetchall())
        cursor.execute(f"SELECT {LEDGER_COLUMNS} FROM reward_ledger ORDER BY id")  # noqa: S608 - fixed columns
        ledger = list(cursor.fetchall())
        cursor.execute(f"SELECT {REFUSAL_COLUMNS} FROM reward_refusals")  # noqa: S608 - fixed columns
        refusals = list(cursor.fetchall())
        connection.commit()  # end the read's transaction: the database is dropped next
    return claims, ledger, refusals


def _transactions(
    claims: Sequence[Row], ledger: Sequence[Row], refusals: Sequence[Row], per_txn: int
) -> list[dict[str, list[Row]]]:
    """The rows of each transaction of `per_txn` events, in event order."""
    chunks: dict[int, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for row in claims:
        chunks[_event_number(row[1]) // per_txn]["claims"].append(row)
    for row in ledger:
        chunks[_event_number(row[_KEY]) // per_txn]["ledger"].append(row)
    for row in refusals:
        chunks[_event_number(row[1]) // per_txn]["refusals"].append(row)
    today = datetime.now(UTC).date()
    return [_derive(chunks[n], today) for n in sorted(chunks)]


def _derive(chunk: dict[str, list[Row]], today: date) -> dict[str, list[Row]]:
    """Add the wallet and inventory deltas and cap counters of one transaction's rows."""
    wallet: Counter[tuple[str, str]] = Counter()
    inventory: Counter[tuple[str, str]] = Counter()
    granted: dict[str, tuple[str, date, str]] = {}
    for row in chunk["ledger"]:
        deltas = wallet if row[_KIND] == "currency" else inventory
        deltas[(row[_PLAYER], row[_ASSET])] += row[_AMOUNT]
        granted[row[_KEY]] = (row[_PLAYER], today, row[_REASON])
    counters = Counter(granted.values())
    return {
        "claims": sorted(chunk["claims"]),
        "ledger": chunk["ledger"],
        "wallet": sorted((p, a, d) for (p, a), d in wallet.items()),
        "inventory": sorted((p, a, d) for (p, a), d in inventory.items()),
        "counters": sorted((p, day, reason, n) for (p, day, reason), n in counters.items()),
        "refusals": chunk["refusals"],
    }


#: Per kind of row: the processor's own INSERT head and tail, in its order of writes.
_INSERTS = (
    ("claims", ledger.CLAIM_INSERT, ""),
    ("ledger", ledger.LEDGER_INSERT, ""),
    ("wallet", ledger.WALLET_INSERTS[AssetKind.CURRENCY], ledger.WALLET_UPSERT),
    ("inventory", ledger.WALLET_INSERTS[AssetKind.ITEM], ledger.WALLET_UPSERT),
    ("counters", ledger.COUNTER_INSERT, ledger.COUNTER_UPSERT),
    ("refusals", ledger.REFUSAL_INSERT, ""),
)


def _statements(cursor: Any, rows: dict[str, list[Row]]) -> list[str]:
    return [
        statement
        for kind, head, tail in _INSERTS
        for statement in render_statements(cursor, head, rows[kind], tail)
    ]


async def replay(processed: MySQLTarget, target: MySQLTarget, per_txn: int) -> dict[str, Any]:
    """Steps 2-3 of the module docstring: the rows of `processed` (where the processor ran)
    written into the fresh `target`, timed; the throughput is events per second."""
    rows = await asyncio.to_thread(_read_back, processed)
    transactions = _transactions(*rows, per_txn=per_txn)
    events = len(rows[0])
    pool = await create_pool(target, maxsize=1)
    try:
        async with pool.acquire() as conn, conn.cursor() as cursor:
            started = time.perf_counter()
            for transaction in transactions:
                await execute_together(cursor, _statements(cursor, transaction))
                await conn.commit()
            finished = time.perf_counter()
    finally:
        pool.close()
        await pool.wait_closed()
    return result(events, started, finished, rows_per_event=round(_rows(transactions) / events, 2))


def _rows(transactions: Sequence[dict[str, list[Row]]]) -> int:
    return sum(len(rows) for transaction in transactions for rows in transaction.values())
