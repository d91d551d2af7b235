"""A batch's transaction finished in the background: its writes and COMMIT overlap the next
batch's Python work (the runtime's before_commit() waits for them before it publishes).

handle() reads under lock and settles a batch, then hands its connection to a Tail: a task
that writes the batch's rows and commits. Rules that keep this exactly-once and in order:
1. A later batch reads its state (caps, purchases, nets) only once every earlier tail has
   sent its writes (`Tails.wait_written`): its locking reads then wait for those rows to
   commit, and see them, as if the earlier batch had committed within handle().
2. A tail commits only after the tails its batch waited for in rule 1 have committed; if one
   of those failed, it rolls back too (nothing of a batch is durable when an earlier one
   in flight was not). Only those: their writes were in before this batch read, so they
   never wait for its locks; a tail started by a concurrent handle() (another loop) may,
   and waiting for it could deadlock where MySQL cannot see it.
   When they all have by the time a tail sends its last statements, the COMMIT goes in the
   same round trip: the next batch's locking reads wait for this COMMIT, so every round
   trip between its last writes and its COMMIT is on the critical path.
3. before_commit() (`Tails.wait_committed`) raises when a tail handled in the caller's task
   context failed: the runtime then holds position and polls that batch again (its claim
   was rolled back with it). The runtime creates the task of step 5 from the loop task that
   called handle(), so the context (a ContextVar) tells whose tails are whose: the input
   loop is never told of the retry loop's failures, and is never spared its own.
Nothing that can fail for good (bad input) is left to a tail: handle() validates and claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiomysql
import pymysql

from workers.errors import DependencyUnavailableError
from workers.processors.rewards.sql import execute_together

#: The tails handled in this task context and not yet reported by before_commit().
_HANDLED: contextvars.ContextVar[list[Tail] | None] = contextvars.ContextVar(
    "rewards_tails", default=None
)


@dataclass(eq=False)
class Tail:
    """One batch's open transaction on its own connection, finishing in `task`."""

    written: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    #: handle() failed after starting it: roll back instead of committing.
    abandoned: bool = False
    committed: bool = False


class Tails:
    """The tails of one processor, in the order their batches were handled."""

    def __init__(self, pool: aiomysql.Pool) -> None:
        self._pool = pool
        self._open: list[Tail] = []

    def start(
        self,
        conn: aiomysql.Connection,
        cursor: aiomysql.Cursor,
        write: Callable[[], Awaitable[Sequence[str]]],
        committed: Callable[[], None],
        *,
        after: list[Tail],
    ) -> Tail:
        """Run `write` on `cursor`, which writes all but the batch's last statements and
        returns those; send them, and COMMIT once the tails `after` have (rule 2), with them
        when those already have. All in a task that owns `conn` from now on: it releases it
        to the pool, or closes it when the transaction failed. `committed` runs once the
        COMMIT succeeded."""
        tail = Tail()
        earlier = [t for t in after if t.task is not None and not t.task.done()]
        tail.task = asyncio.create_task(self._finish(tail, earlier, conn, cursor, write))
        tail.task.add_done_callback(lambda task: self._done(tail, task, committed))
        self._open.append(tail)
        handled = _HANDLED.get()
        if handled is None:
            handled = []
            _HANDLED.set(handled)
        handled.append(tail)
        return tail

    async def abandon(self, tail: Tail) -> None:
        """handle() failed after starting `tail`: wait until its transaction is rolled back,
        and forget it. A tail that had sent its last statements with the COMMIT (rule 2)
        has committed: the batch's redelivery then finds its claims, a duplicate whose
        grants are published again."""
        tail.abandoned = True
        self._forget(tail)
        if tail.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(tail.task)

    async def wait_written(self) -> list[Tail]:
        """Rule 1: every tail started so far has sent its writes (or failed); those tails,
        the ones a transaction settled after this may wait for (rule 2)."""
        started = list(self._open)
        for tail in started:
            await tail.written.wait()
        return started

    async def wait_committed(self) -> None:
        """Rule 3 (before_commit): wait for the tails handled in the caller's context so
        far; raise DependencyUnavailableError when one of them failed. A caller that handled
        nothing in its context (a test calling handle() from other tasks) answers for every
        tail."""
        handled = _HANDLED.get()
        mine = list(handled) if handled is not None else list(self._open)
        waiting = {t.task for t in mine if t.task is not None}
        if waiting:
            await asyncio.wait(waiting)
        failures: list[BaseException] = []
        for tail in mine:  # all done now
            self._forget(tail)
            if tail.task is None:
                continue
            if tail.task.cancelled():
                failures.append(asyncio.CancelledError())
            elif (error := tail.task.exception()) is not None:
                failures.append(error)
        if failures:
            raise DependencyUnavailableError(
                f"mysql: a batch's transaction did not commit: {failures[0]!r}"
            ) from failures[0]

    async def stop(self) -> None:
        """Let every tail finish (the pool closes after this)."""
        waiting = [t.task for t in self._open if t.task is not None]
        if waiting:
            await asyncio.wait(waiting)
        self._open.clear()

    def _forget(self, tail: Tail) -> None:
        with contextlib.suppress(ValueError):
            self._open.remove(tail)
        handled = _HANDLED.get()
        if handled is not None:
            with contextlib.suppress(ValueError):
                handled.remove(tail)

    def _done(self, tail: Tail, task: asyncio.Task[None], committed: Callable[[], None]) -> None:
        if task.cancelled() or task.exception() is not None:
            return  # kept until reported (rule 3)
        with contextlib.suppress(ValueError):
            self._open.remove(tail)
        if tail.committed:
            committed()

    async def _finish(
        self,
        tail: Tail,
        earlier: list[Tail],
        conn: aiomysql.Connection,
        cursor: aiomysql.Cursor,
        write: Callable[[], Awaitable[Sequence[str]]],
    ) -> None:
        healthy = False
        try:
            try:
                last = await write()
                if last and not tail.abandoned and _all_done_committed(earlier):
                    await execute_together(cursor, [*last, "COMMIT"])
                    tail.committed = True
                elif last:
                    await execute_together(cursor, last)
            finally:
                tail.written.set()
            if not tail.committed:
                await _all_committed(earlier)
                if tail.abandoned:
                    await conn.rollback()
                else:
                    await conn.commit()
                    tail.committed = True
            healthy = True
        except asyncio.CancelledError:
            conn.close()  # a statement may be in flight: the server drops the transaction
            raise
        except BaseException:
            # If the connection is gone the rollback fails too; the server drops the
            # transaction with the connection.
            with contextlib.suppress(pymysql.err.MySQLError, OSError):
                await conn.rollback()
                healthy = True
            raise
        finally:
            with contextlib.suppress(pymysql.err.MySQLError, OSError):
                await cursor.close()
            if not healthy:
                conn.close()
            self._pool.release(conn)


def _all_done_committed(tails: list[Tail]) -> bool:
    """Rule 2 holds already: every one of `tails` has committed."""
    return all(t.committed for t in tails)


async def _all_committed(tails: list[Tail]) -> None:
    """Rule 2: wait for `tails`; raise when one of them did not commit."""
    tasks = [t.task for t in tails if t.task is not None]
    if tasks:
        await asyncio.wait(tasks)
    if any(task.cancelled() or task.exception() is not None for task in tasks):
        raise DependencyUnavailableError("mysql: an earlier batch's transaction did not commit")
