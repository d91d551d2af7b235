"""Tails (commits.py): who is told of a transaction that did not commit, and in what order
transactions commit. With a fake connection: what is tested is the bookkeeping, not MySQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from workers.errors import DependencyUnavailableError
from workers.processors.rewards.commits import Tail, Tails


class LostConnectionError(OSError):
    pass


class FakeConnection:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    async def commit(self) -> None:
        self.log.append(f"{self.name} commit")

    async def rollback(self) -> None:
        self.log.append(f"{self.name} rollback")

    def close(self) -> None:
        self.log.append(f"{self.name} close")


class FakeCursor:
    def __init__(self, log: list[str] | None = None, name: str = "") -> None:
        self.log, self.name = log, name

    async def execute(self, sql: str) -> None:
        assert self.log is not None, "this tail was to send nothing"
        statements = " + ".join(sql.split(";\n"))
        self.log.append(f"{self.name} sends {statements}")

    async def fetchall(self) -> list[tuple[object, ...]]:
        return []

    async def nextset(self) -> bool:
        return False

    async def close(self) -> None:
        pass


class FakePool:
    def __init__(self) -> None:
        self.released: list[FakeConnection] = []

    def release(self, conn: FakeConnection) -> None:
        self.released.append(conn)


def start(
    tails: Tails,
    log: list[str],
    name: str,
    gate: asyncio.Event | None = None,
    *,
    after: list[Tail] | None = None,
    last: tuple[str, ...] = (),
) -> None:
    """A tail whose writes wait for `gate` (when given) and fail when the gate says so, then
    leave `last` to send."""

    async def write() -> list[str]:
        if gate is not None:
            await gate.wait()
            if getattr(gate, "fails", False):
                raise LostConnectionError(f"{name} lost")
        return list(last)

    conn: Any = FakeConnection(log, name)
    cursor: Any = FakeCursor(log, name)
    tails.start(conn, cursor, write, lambda: log.append(f"{name} counted"), after=after or [])


def failing_gate() -> asyncio.Event:
    gate = asyncio.Event()
    gate.fails = True  # type: ignore[attr-defined]  # read by start()
    return gate


async def test_a_failed_transaction_is_reported_to_the_settling_of_its_own_loop_only() -> None:
    # Given: two loops (two tasks); loop A's transaction fails, then loop B handles one.
    log: list[str] = []
    tails = Tails(FakePool())
    gate = failing_gate()
    a_handled, b_settled = asyncio.Event(), asyncio.Event()

    async def loop_a() -> None:
        start(tails, log, "a", gate)
        a_handled.set()
        gate.set()
        await b_settled.wait()
        # The runtime settles from a task created by the loop: it inherits the context.
        await asyncio.create_task(tails.wait_committed())

    async def loop_b() -> None:
        await a_handled.wait()
        await asyncio.sleep(0.01)  # a's transaction is gone by now
        start(tails, log, "b")
        await asyncio.create_task(tails.wait_committed())
        b_settled.set()

    # When / Then: B commits and is not held up; A's settling is told.
    failing_loop = asyncio.create_task(loop_a())
    await loop_b()
    with pytest.raises(DependencyUnavailableError, match="did not commit"):
        await failing_loop
    assert log == ["a rollback", "b commit", "b counted"]
    await tails.wait_committed()  # nothing left to report


async def test_a_transaction_started_while_an_earlier_one_ran_rolls_back_if_that_one_fails() -> (
    None
):
    log: list[str] = []
    tails = Tails(FakePool())
    gate = failing_gate()
    start(tails, log, "first", gate)
    start(tails, log, "second", after=list(tails._open))

    gate.set()
    with pytest.raises(DependencyUnavailableError):
        await tails.wait_committed()

    assert log == ["first rollback", "second rollback"]
    await tails.wait_committed()


async def test_an_abandoned_transaction_is_rolled_back_and_never_reported() -> None:
    log: list[str] = []
    tails = Tails(FakePool())
    gate = failing_gate()
    start(tails, log, "abandoned", gate)
    tail = tails._open[0]

    gate.set()
    await tails.abandon(tail)

    assert log == ["abandoned rollback"]
    await tails.wait_committed()


async def test_the_commit_rides_with_the_last_statements_once_the_batches_before_committed() -> (
    None
):
    # Given: a batch whose transaction is still open, and one settled behind it.
    log: list[str] = []
    tails = Tails(FakePool())
    gate = asyncio.Event()
    start(tails, log, "first", gate, last=("UPSERT 1",))
    start(tails, log, "second", after=list(tails._open), last=("UPSERT 2",))
    await asyncio.sleep(0.01)

    # When: the first one's writes end, then a third batch settles behind both.
    gate.set()
    await tails.wait_committed()
    start(tails, log, "third", after=list(tails._open), last=("UPSERT 3",))
    await tails.wait_committed()

    # Then: the first commits with its last statements (nothing before it), the second only
    # after it (rule 2), apart; the third, settled after both committed, in one round trip.
    assert log == [
        "second sends UPSERT 2",
        "first sends UPSERT 1 + COMMIT",
        "first counted",
        "second commit",
        "second counted",
        "third sends UPSERT 3 + COMMIT",
        "third counted",
    ]
