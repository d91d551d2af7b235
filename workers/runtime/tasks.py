"""Stopping a task for sure.

redis-py 8 sends each command under `asyncio.wait_for` (its socket_timeout, 5 s by default),
and Python 3.11's wait_for drops a cancellation that lands as the inner write completes (fixed
in 3.12): one `task.cancel()` may leave a task running, and an `await task` after it may wait
forever. So we cancel again until the task is done, within a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

#: Between two cancels of a task that is still running.
_RECANCEL_S = 0.05


async def cancel_and_wait(task: asyncio.Task[object], timeout_s: float, *, name: str) -> bool:
    """Cancel `task`, again every 50 ms while it runs, for at most `timeout_s`; True once it
    is done. A task still running after that is left (and logged): the caller goes on."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not task.done():
        task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.error("task did not stop after repeated cancels; left running", task=name)
            return False
        await asyncio.wait({task}, timeout=min(_RECANCEL_S, remaining))
    return True


async def stop_within(task: asyncio.Task[object], grace_s: float, *, name: str) -> bool:
    """Give `task` `grace_s` to finish on its own, then cancel_and_wait() it for as long
    again; log how it failed, if it did. True once it is done."""
    await asyncio.wait({task}, timeout=grace_s)
    if not task.done():
        log.warning("task did not finish within its grace; cancelling it", task=name)
        await cancel_and_wait(task, grace_s, name=name)
    log_failure(task, name=name)
    return task.done()


def log_failure(task: asyncio.Task[object], *, name: str) -> None:
    """Log how a finished task failed, if it did (its exception is retrieved)."""
    if task.done() and not task.cancelled() and (error := task.exception()) is not None:
        log.error("task failed", task=name, error=repr(error))


class Periodic:
    """Runs `step` every `interval_s` in a task of its own, from start() until stop(); an
    interval of 0 runs nothing. `at_once`: the first round runs at start, else after one
    interval. stop() asks the task to end between rounds rather than cancelling it (a dropped
    cancellation, above, would leave it running), and gives a round in progress `grace_s` to
    finish before stop_within() cancels it. `step` handles its own failures: one it raises
    ends the task (logged at stop)."""

    def __init__(
        self,
        step: Callable[[], Awaitable[None]],
        interval_s: float,
        *,
        name: str,
        at_once: bool,
        grace_s: float,
    ) -> None:
        self._step = step
        self._interval_s = interval_s
        self._name = name
        self._at_once = at_once
        self._grace_s = grace_s
        self._stopping = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.task is None and self._interval_s > 0:
            self._stopping.clear()
            self.task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            self._stopping.set()
            await stop_within(task, self._grace_s, name=self._name)

    async def _run(self) -> None:
        if not self._at_once:
            await self._wait()
        while not self._stopping.is_set():
            await self._step()
            await self._wait()

    async def _wait(self) -> None:
        """One interval, or less when stop() comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=self._interval_s)
