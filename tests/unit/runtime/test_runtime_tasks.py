"""cancel_and_wait: a task that drops a cancellation (as redis-py 8 on Python 3.11 may) is
cancelled again until it stops; one that never stops is left after the bound, not awaited."""

from __future__ import annotations

import asyncio

from workers.runtime.tasks import cancel_and_wait


async def _drops_cancels(times: int, stopped: list[bool], *, until: asyncio.Event) -> None:
    """Carries on after its first `times` cancellations (as a dropped cancel does), or until
    `until` is set."""
    dropped = 0
    while not until.is_set():
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            dropped += 1
            if dropped > times:
                stopped.append(True)
                raise


async def test_a_task_that_drops_its_first_cancel_is_cancelled_again_until_it_stops() -> None:
    # Given a task that ignores the first two cancellations it gets,
    stopped: list[bool] = []
    task = asyncio.create_task(_drops_cancels(2, stopped, until=asyncio.Event()))
    await asyncio.sleep(0)

    # When it is cancelled and waited for,
    done = await asyncio.wait_for(cancel_and_wait(task, 2.0, name="t"), timeout=5)

    # Then the third cancellation stopped it.
    assert done is True
    assert task.cancelled()
    assert stopped == [True]


async def test_a_task_that_never_stops_is_left_after_the_bound() -> None:
    # Given a task that ignores every cancellation,
    release = asyncio.Event()
    task = asyncio.create_task(_drops_cancels(10**9, [], until=release))
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()

    # When it is cancelled and waited for with a 0.2 s bound,
    done = await cancel_and_wait(task, 0.2, name="t")

    # Then the caller goes on after about that long, and the task still runs.
    assert done is False
    assert 0.15 < loop.time() - started < 2.0
    assert not task.done()
    release.set()  # let it end: nothing else could
    await asyncio.wait_for(task, timeout=2)
