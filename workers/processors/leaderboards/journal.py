"""Copy the journal of applied submissions (a Redis stream) to MySQL, then trim it.

The scoring script appends the submissions it applies to the stream in the same atomic call as
the effect (one entry per up to JOURNAL_PER_ENTRY submissions), so the stream holds exactly what
Redis applied. Copying is idempotent (unique on the idempotency key) and entries are deleted
only after the MySQL commit: a crash or a MySQL outage between the two leaves them in the
stream, and the next flush copies them again harmlessly. Several workers may flush
concurrently; they only insert the same rows twice, which is a no-op.

The processor copies what each batch applied from the script's answer (JournalCopier.add, then
copy() in before_commit: no stream read), and flushes the whole stream only when something
may have been left in it: at start, in the background, and before committing a batch that had
repeats (their first run may have died before its copy).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiomysql
import pymysql
import redis.asyncio as aioredis
import redis.exceptions
import structlog

from workers.errors import DependencyUnavailableError
from workers.processors.leaderboards import keys
from workers.processors.leaderboards.scoring import JOURNAL_SEQ_BITS
from workers.processors.leaderboards.store import SubmissionRow, insert_rows
from workers.runtime.failures import classify
from workers.runtime.tasks import Periodic, stop_within

log = structlog.get_logger(__name__)
_FIELDS = 7


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def rows_of_entry(entry_id: Any, fields: dict[Any, Any]) -> list[SubmissionRow]:
    """The rows of one stream entry: field `d`, a JSON array of 7 values per submission."""
    values = json.loads(fields[b"d"] if b"d" in fields else fields["d"])
    ms, seq = (int(part) for part in _text(entry_id).split("-"))
    return [
        (
            key,
            event_id,
            board_id,
            period,
            player_id,
            int(submitted),
            int(float(sort_value)),
            ms,
            (seq << JOURNAL_SEQ_BITS) | place,
        )
        for place, (key, event_id, board_id, period, player_id, submitted, sort_value) in (
            enumerate(zip(*[iter(values)] * _FIELDS, strict=True))
        )
    ]


async def flush_journal(
    client: aioredis.Redis, pool: aiomysql.Pool, *, prefix: str, chunk: int = 1000
) -> int:
    """Copy every journal entry to MySQL and delete it from the stream; return how many
    submissions were copied. Reads a few entries at a time (each holds up to 512)."""
    key = keys.journal_key(prefix)
    entries_per_read = max(1, chunk // 64)
    copied = 0
    while True:
        entries: Any = await client.xrange(key, count=entries_per_read)
        if not entries:
            return copied
        rows = [row for entry_id, fields in entries for row in rows_of_entry(entry_id, fields)]
        for first in range(0, len(rows), chunk):
            await insert_rows(pool, rows[first : first + chunk])
        await client.xdel(key, *[entry_id for entry_id, _ in entries])
        copied += len(rows)
        if len(entries) < entries_per_read:
            return copied


def _sorted(exc: BaseException) -> BaseException:
    """Our error for a driver failure (workers.runtime.failures), else the failure itself."""
    return classify(exc) or exc


class JournalCopier:
    """Copies what batches applied (copy()) and, in case some copy failed, the whole stream
    every `interval_s` in the background (flush()).

    The background copy matters when a batch's copy failed (MySQL down) and the process then
    died: its events are already `done` in Redis, so the runtime skips them when they are
    polled again; the entries must still reach MySQL.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        pool: aiomysql.Pool,
        *,
        prefix: str,
        chunk: int,
        interval_s: float,
        stop_grace_s: float = 5.0,
    ) -> None:
        self._client = client
        self._pool = pool
        self._prefix = prefix
        self._chunk = chunk
        self._stop_grace_s = stop_grace_s
        self._background = Periodic(
            self._copy_in_background,
            interval_s,
            name="leaderboards journal copy",
            at_once=True,
            grace_s=stop_grace_s,
        )
        #: Rows and stream entries applied by handled batches and not yet copied.
        self._rows: list[SubmissionRow] = []
        self._entries: list[str] = []
        #: Whether the whole stream must be flushed before the next commit: at first, for
        #: whatever a process that died left in it.
        self._flush_due = True
        self._lock = asyncio.Lock()

    def add(self, rows: list[SubmissionRow], entry_ids: list[str]) -> None:
        """Rows of one batch to copy, and the stream entries that hold them."""
        self._rows += rows
        self._entries += entry_ids

    def flush_before_commit(self) -> None:
        """Copy the whole stream with the next copy(): a repeat's row may only be there."""
        self._flush_due = True

    async def flush(self) -> int:
        """Copy the whole stream now; DependencyUnavailableError (or TransientError) when
        Redis or MySQL fail."""
        try:
            return await flush_journal(
                self._client, self._pool, prefix=self._prefix, chunk=self._chunk
            )
        except (redis.exceptions.RedisError, pymysql.err.Error, OSError) as exc:
            raise _sorted(exc) from exc

    async def copy(self) -> None:
        """Copy every row added so far, then delete their entries; the whole stream too when
        a flush is due. On failure the rows stay pending (and their entries in the stream);
        errors as flush()."""
        async with self._lock:
            rows, entries = self._rows, self._entries
            self._rows, self._entries = [], []
            try:
                for first in range(0, len(rows), self._chunk):
                    await insert_rows(self._pool, rows[first : first + self._chunk])
                if entries:
                    await self._client.xdel(keys.journal_key(self._prefix), *entries)
            except (redis.exceptions.RedisError, pymysql.err.Error, OSError) as exc:
                self._rows, self._entries = rows + self._rows, entries + self._entries
                self._flush_due = True
                raise _sorted(exc) from exc
            if self._flush_due:
                await self.flush()
                self._flush_due = False

    def start(self) -> None:
        self._background.start()

    async def stop(self) -> None:
        """Stop the background copy, then copy what is left if both stores answer.

        Bounded by `stop_grace_s` at each step, so a store that hangs cannot hold up the
        worker's shutdown. The background copy is asked to stop between rounds rather than
        cancelled: redis-py 8 and Python 3.11 may drop a cancellation (workers/runtime/tasks.py),
        so a cancelled copy loop could carry on forever and this stop wait for it forever (a CI
        run hung 300 s so; tests/integration/leaderboards/test_leaderboard_journal_stop.py).
        Past the grace, a step is cancelled until it is done (the final copy runs as a task for
        that: a timeout around it is a cancellation too, and may be dropped the same way).
        What is not copied now stays in the stream for the next flush, by this or another
        process."""
        await self._background.stop()
        final = asyncio.create_task(self._copy_rest())
        await stop_within(final, self._stop_grace_s, name="leaderboards final journal copy")

    async def _copy_rest(self) -> None:
        try:
            await self.copy()
            await self.flush()
        except DependencyUnavailableError as exc:
            log.warning("leaderboards journal left for the next flush", error=str(exc))

    async def _copy_in_background(self) -> None:
        try:
            await self.flush()
        except DependencyUnavailableError as exc:
            log.warning("leaderboards journal copy failed; retrying later", error=str(exc))
