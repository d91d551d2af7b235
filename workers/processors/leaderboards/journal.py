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
import json
from collections.abc import Sequence
from typing import Any

import aiomysql
import pymysql
import redis.asyncio as aioredis
import redis.exceptions
import structlog

from workers.errors import DependencyUnavailableError
from workers.processors.leaderboards import keys
from workers.processors.leaderboards.scoring import ScoreResult, Submission
from workers.processors.leaderboards.store import SubmissionRecord, record_submissions
from workers.runtime.failures import classify

log = structlog.get_logger(__name__)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _record(entry_id: Any, fields: dict[Any, Any]) -> SubmissionRecord:
    """One stream entry: a single field `d`, the JSON array the scoring script wrote."""
    key, event_id, board_id, period, player_id, submitted, sort_value = json.loads(
        fields[b"d"] if b"d" in fields else fields["d"]
    )
    ms, seq = _text(entry_id).split("-")
    return SubmissionRecord(
        idempotency_key=key,
        event_id=event_id,
        leaderboard_id=board_id,
        period=period,
        player_id=player_id,
        submitted=int(submitted),
        sort_value=int(float(sort_value)),
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


def _sorted(exc: BaseException) -> BaseException:
    """Our error for a driver failure (workers.runtime.failures), else the failure itself."""
    return classify(exc) or exc


def _entry_id(record: SubmissionRecord) -> str:
    return f"{record.journal_ms}-{record.journal_seq}"


def record_of(sub: Submission, result: ScoreResult) -> SubmissionRecord:
    """The MySQL record of an applied submission, from the scoring script's answer."""
    if result.sort_value is None or result.journal_id is None:
        raise ValueError("only applied submissions have a record")
    ms, seq = result.journal_id.split("-")
    return SubmissionRecord(
        idempotency_key=sub.idempotency_key,
        event_id=sub.event_id,
        leaderboard_id=sub.board.id,
        period=sub.period.key,
        player_id=sub.player_id,
        submitted=sub.operand,
        sort_value=result.sort_value,
        journal_ms=int(ms),
        journal_seq=int(seq),
    )


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
        """Copy the whole stream now; DependencyUnavailableError (or TransientError) when
        Redis or MySQL fail."""
        try:
            return await flush_journal(
                self._client, self._pool, prefix=self._prefix, chunk=self._chunk
            )
        except (redis.exceptions.RedisError, pymysql.err.Error, OSError) as exc:
            raise _sorted(exc) from exc

    async def copy(self, applied: Sequence[tuple[Submission, ScoreResult]]) -> None:
        """Copy a batch's applied submissions, known from the script's answer, then delete
        their entries; the stream is read back only if older entries are left (a failed copy).
        Errors as flush()."""
        records = [record_of(sub, result) for sub, result in applied]
        try:
            if records:
                await record_submissions(self._pool, records)
            pipe = self._client.pipeline(transaction=False)
            if records:
                pipe.xdel(keys.journal_key(self._prefix), *(_entry_id(r) for r in records))
            pipe.xlen(keys.journal_key(self._prefix))
            *_, left = await pipe.execute()
        except (redis.exceptions.RedisError, pymysql.err.Error, OSError) as exc:
            raise _sorted(exc) from exc
        if left:
            await self.flush()

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
