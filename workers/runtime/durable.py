"""The durable dedup guard for processors whose effects live in MySQL.

Redis markers can be flushed or expire; the processed_events table (PRIMARY KEY (processor,
idempotency_key)) cannot. Inside the processor's own transaction:

    async with pool.acquire() as conn, conn.cursor() as cursor:
        fresh = await claim_durably(cursor, self.name, batch)
        ... write effects for `fresh` only ...
        await conn.commit()

The rows and the effects commit together, so an event's effect is written at most once even
if every Redis marker is lost. Events not in `fresh` were applied before: report DUPLICATE.
"""

from __future__ import annotations

from collections.abc import Sequence

import aiomysql
import pymysql

from schemas.liveops.v1.envelope_pb2 import Envelope
from workers.errors import TransientError

_DUPLICATE_ENTRY = 1062


async def claim_durably(
    cursor: aiomysql.Cursor, processor: str, envelopes: Sequence[Envelope]
) -> list[Envelope]:
    """Insert a processed_events row per new idempotency key; return the new envelopes.

    Locks the existing rows (SELECT ... FOR UPDATE) so a concurrent worker with the same keys
    waits for this transaction. Two workers inserting the same new key at once: one of them
    gets a duplicate-key error, raised as TransientError so the runtime retries the batch,
    which then sees the row and skips it. Later copies of a key within `envelopes` are
    treated as already applied.
    """
    by_key: dict[str, Envelope] = {}
    for envelope in envelopes:
        by_key.setdefault(envelope.idempotency_key, envelope)
    if not by_key:
        return []
    placeholders = ", ".join(["%s"] * len(by_key))
    await cursor.execute(
        "SELECT idempotency_key FROM processed_events "  # noqa: S608 - only placeholders added
        f"WHERE processor = %s AND idempotency_key IN ({placeholders}) FOR UPDATE",
        (processor, *by_key),
    )
    seen = {row[0] for row in await cursor.fetchall()}
    fresh = [envelope for key, envelope in by_key.items() if key not in seen]
    if not fresh:
        return []
    rows = ", ".join(["(%s, %s, %s)"] * len(fresh))
    params: list[str] = []
    for envelope in fresh:
        params += [processor, envelope.idempotency_key, envelope.event_id]
    try:
        await cursor.execute(
            "INSERT INTO processed_events (processor, idempotency_key, event_id) "  # noqa: S608 - only placeholders added
            f"VALUES {rows}",
            params,
        )
    except pymysql.err.IntegrityError as exc:
        if exc.args and exc.args[0] == _DUPLICATE_ENTRY:
            raise TransientError("another worker claimed the same events concurrently") from exc
        raise
    return fresh
