"""Copy the journal of applied submissions (a Redis stream) to MySQL, then trim it.

The scoring script appends each applied submission to the stream in the same atomic call as
the effect, so the stream holds exactly what Redis applied. Copying is idempotent (unique on the
idempotency key) and entries are deleted only after the MySQL commit: a crash or a MySQL outage
between the two leaves them in the stream, and the next flush copies them again harmlessly.
Several workers may flush concurrently; they only insert the same rows twice, which is a no-op.
"""

from __future__ import annotations

from typing import Any

import aiomysql
import redis.asyncio as aioredis

from workers.processors.leaderboards import keys
from workers.processors.leaderboards.store import SubmissionRecord, record_submissions


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _record(entry_id: Any, fields: dict[Any, Any]) -> SubmissionRecord:
    values = {_text(k): _text(v) for k, v in fields.items()}
    ms, seq = _text(entry_id).split("-")
    return SubmissionRecord(
        idempotency_key=values["k"],
        event_id=values["e"],
        leaderboard_id=values["b"],
        period=values["p"],
        player_id=values["u"],
        submitted=int(values["s"]),
        sort_value=int(float(values["v"])),
        journal_ms=int(ms),
        journal_seq=int(seq),
    )


async def flush_journal(
    client: aioredis.Redis, pool: aiomysql.Pool, *, prefix: str, chunk: int = 1000
) -> int:
    """Copy every journal entry to MySQL and delete it from the stream; return how many."""
    key = keys.journal_key(prefix)
    copied = 0
    while True:
        entries: Any = await client.xrange(key, count=chunk)
        if not entries:
            return copied
        await record_submissions(pool, [_record(i, f) for i, f in entries])
        await client.xdel(key, *[entry_id for entry_id, _ in entries])
        copied += len(entries)
        if len(entries) < chunk:
            return copied
