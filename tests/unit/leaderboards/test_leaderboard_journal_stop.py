"""JournalCopier.stop(): asks the background copy to stop between rounds, and never waits on
a store that hangs for longer than its grace (plain fakes of the Redis client)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from workers.processors.leaderboards.journal import JournalCopier


class _Stream:
    """The journal stream of a fake Redis client: empty, or hanging on every read."""

    def __init__(self, *, hang: bool, drops_first_cancel: bool = False) -> None:
        self.hang = hang
        self.drops_first_cancel = drops_first_cancel
        self.reads = 0
        self.reading = asyncio.Event()

    async def xrange(self, _key: str, count: int) -> list[Any]:
        self.reads += 1
        self.reading.set()
        if self.hang:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                if not self.drops_first_cancel:
                    raise
                # As redis-py 8 on Python 3.11 may: the cancel is lost, the call goes on.
                await asyncio.Event().wait()
        return []

    async def xdel(self, _key: str, *_entries: str) -> int:
        return 0


async def _started(stream: _Stream, grace_s: float) -> tuple[JournalCopier, asyncio.Task[None]]:
    """A copier on `stream` whose background copy has begun its first read, and that copy."""
    client, pool = cast(Any, stream), cast(Any, None)  # an empty stream never reaches MySQL
    copier = JournalCopier(client, pool, prefix="p", chunk=10, interval_s=60, stop_grace_s=grace_s)
    copier.start()
    await stream.reading.wait()
    task = copier._background.task
    assert task is not None
    return copier, task


async def test_stop_ends_the_background_copy_between_rounds_without_cancelling_it() -> None:
    # Given a copier whose background copy has done one round and now waits 60 s for the next,
    stream = _Stream(hang=False)
    copier, task = await _started(stream, grace_s=5)

    # When it is stopped,
    await asyncio.wait_for(copier.stop(), timeout=2)

    # Then the loop left on its own (no cancellation) and the final copy flushed the stream.
    assert task.done() and not task.cancelled()
    assert stream.reads == 3  # the first round, copy()'s due flush, the final flush


async def test_stop_gives_up_on_a_store_that_hangs_after_its_grace() -> None:
    # Given a copier whose background copy is stuck in a Redis read that never answers,
    stream = _Stream(hang=True)
    copier, task = await _started(stream, grace_s=0.2)

    # When it is stopped, it returns: the stuck copy is cancelled after the grace, and the
    # final copy (stuck too) is abandoned after another; its entries stay for the next flush.
    await asyncio.wait_for(copier.stop(), timeout=3)
    assert task.cancelled()


async def test_stop_cancels_again_a_read_that_dropped_the_first_cancel() -> None:
    # Given a copier stuck in a Redis read that ignores the first cancellation it gets (in
    # the background copy, and again in the final copy),
    stream = _Stream(hang=True, drops_first_cancel=True)
    copier, task = await _started(stream, grace_s=0.2)

    # When it is stopped, it still returns, within a few graces: each stuck step was
    # cancelled again until it stopped.
    await asyncio.wait_for(copier.stop(), timeout=3)
    assert task.cancelled()
    assert stream.reads == 2  # the background round, then the final copy's flush
