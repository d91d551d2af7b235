"""JournalCopier.stop(): asks the background copy to stop between rounds, and never waits on
a store that hangs for longer than its grace (plain fakes of the Redis client)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from workers.processors.leaderboards.journal import JournalCopier


class _Stream:
    """The journal stream of a fake Redis client: empty, or hanging on every read."""

    def __init__(self, *, hang: bool) -> None:
        self.hang = hang
        self.reads = 0
        self.reading = asyncio.Event()

    async def xrange(self, _key: str, count: int) -> list[Any]:
        self.reads += 1
        self.reading.set()
        if self.hang:
            await asyncio.Event().wait()
        return []

    async def xdel(self, _key: str, *_entries: str) -> int:
        return 0


def _copier(stream: _Stream, grace_s: float) -> JournalCopier:
    client, pool = cast(Any, stream), cast(Any, None)  # an empty stream never reaches MySQL
    return JournalCopier(client, pool, prefix="p", chunk=10, interval_s=60, stop_grace_s=grace_s)


async def test_stop_ends_the_background_copy_between_rounds_without_cancelling_it() -> None:
    # Given a copier whose background copy has done one round and now waits 60 s for the next,
    stream = _Stream(hang=False)
    copier = _copier(stream, grace_s=5)
    copier.start()
    await stream.reading.wait()
    task = copier._task
    assert task is not None

    # When it is stopped,
    await asyncio.wait_for(copier.stop(), timeout=2)

    # Then the loop left on its own (no cancellation) and the final copy flushed the stream.
    assert task.done() and not task.cancelled()
    assert stream.reads == 3  # the first round, copy()'s due flush, the final flush


async def test_stop_gives_up_on_a_store_that_hangs_after_its_grace() -> None:
    # Given a copier whose background copy is stuck in a Redis read that never answers,
    stream = _Stream(hang=True)
    copier = _copier(stream, grace_s=0.2)
    copier.start()
    await stream.reading.wait()
    task = copier._task
    assert task is not None

    # When it is stopped, it returns: the stuck copy is cancelled after the grace, and the
    # final copy (stuck too) is abandoned after another; its entries stay for the next flush.
    await asyncio.wait_for(copier.stop(), timeout=3)
    assert task.cancelled()
