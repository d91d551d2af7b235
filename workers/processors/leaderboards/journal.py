"""Copy the journal of applied submissions (a Redis stream) to MySQL, then trim it.

The scoring script appends each applied submission to the stream in the same atomic call as
the effect, so the stream holds exactly what Redis applied. Copying is idempotent (unique on the
idempotency key) and entries are deleted only after the MySQL commit: a crash or a MySQL outage
between the two leaves them in the stream, and the next flush copies them again harmlessly.
Several workers may flush concurrently; they only insert the same rows twice, which is a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiomysql
import pymysql
import redis.asyncio as aioredis
import redis.exceptions
import structlog

from workers.errors import DependencyUnavailableError
from workers.processors.leaderboards import keys
from workers.processors.leaderboards.store import SubmissionRecord, record_submissions
from workers.runtime.failures import classify

log = structlog.get_logger(__name__)


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


class JournalCopier:
    """Copies the journal after every batch (flush) and every `interval_s` in the background.

    The background copy matters when a batch's copy failed (MySQL down): its events are
    already `done` in Redis, so the runtime skips them when it polls them again and no later
    batch may come soon; the entries must still reach MySQL.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        pool: aiomysql.Pool,
        *,
        prefix: str,
        chunk: int,
        interval_s: float,
    ) -> None:
        self._client = client
        self._pool = pool
        self._prefix = prefix
        self._chunk = chunk
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def flush(self) -> int:
        """Copy now; DependencyUnavailableError (or TransientError) when Redis or MySQL fail."""
        try:
            return await flush_journal(
                self._client, self._pool, prefix=self._prefix, chunk=self._chunk
            )
        except (redis.exceptions.RedisError, pymysql.err.Error, OSError) as exc:
            mapped = classify(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def start(self) -> None:
        if self._task is None and self._interval_s > 0:
            self._task = asyncio.create_task(self._copy_periodically())

    async def stop(self) -> None:
        """Stop the background copy, then copy what is left if both stores answer."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(DependencyUnavailableError):
            await self.flush()

    async def _copy_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.flush()
            except DependencyUnavailableError as exc:
                log.warning("leaderboards journal copy failed; retrying later", error=str(exc))
