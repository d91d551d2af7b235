"""while_in_flight: Python work overlaps a statement, and never leaves it running on an error."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from workers.processors.rewards.sql import while_in_flight


class BlockFailedError(Exception):
    pass


async def statement(log: list[str], gate: asyncio.Event) -> str:
    log.append("sent")
    await gate.wait()
    log.append("answered")
    return "rows"


async def test_the_block_runs_after_the_statement_is_sent() -> None:
    log: list[str] = []
    gate = asyncio.Event()
    task = asyncio.ensure_future(statement(log, gate))
    cursor = SimpleNamespace(connection=SimpleNamespace(close=lambda: log.append("closed")))

    async with while_in_flight(task, cursor):
        log.append("block")
        gate.set()

    assert await task == "rows"
    assert log == ["sent", "block", "answered"]


async def test_a_failing_block_waits_for_the_statement_before_raising() -> None:
    log: list[str] = []
    gate = asyncio.Event()
    task = asyncio.ensure_future(statement(log, gate))
    cursor = SimpleNamespace(connection=SimpleNamespace(close=lambda: log.append("closed")))
    asyncio.get_running_loop().call_later(0.01, gate.set)

    with pytest.raises(BlockFailedError):
        async with while_in_flight(task, cursor):
            raise BlockFailedError

    assert task.done()
    assert log == ["sent", "answered"]
