"""Prize events out of the leaderboards, published directly and acknowledged by the broker.

The lazy closer and `liveops leaderboards close` publish a closed period's prizes themselves
rather than as a batch's outputs: they must know when every prize is out (the period is marked
announced only then). Records are built as the runtime builds a batch's outputs
(OutboundRecord.of_output), through the runtime's Outbox (acks=all).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from topics.settings import KafkaSettings
from workers.runtime.outbox import Outbox
from workers.runtime.processor import OutputEvent
from workers.runtime.records import OutboundRecord


class PrizeSender(Protocol):
    """What publishes prizes: PrizePublisher, or a fake in unit tests."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, outputs: Sequence[OutputEvent]) -> None:
        """Return once every event is acknowledged; DependencyUnavailableError otherwise."""


class PrizePublisher:
    """`await start()`, `publish(...)` as often as needed, `await stop()`: one producer."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        # Built in start(): aiokafka clients need the running loop, and warn if never closed.
        self._outbox: Outbox | None = None

    async def start(self) -> None:
        outbox = Outbox(self._kafka)
        try:
            await outbox.start()
        except BaseException:
            await outbox.stop()
            raise
        self._outbox = outbox

    async def stop(self) -> None:
        outbox, self._outbox = self._outbox, None
        if outbox is not None:
            await outbox.stop()

    async def publish(self, outputs: Sequence[OutputEvent]) -> None:
        """Return once the broker acknowledged every event; DependencyUnavailableError when it
        did not (some may be out all the same: publishing again repeats the same ids)."""
        if self._outbox is None:
            raise RuntimeError("PrizePublisher.start() was not called")
        await self._outbox.send_all([OutboundRecord.of_output(o) for o in outputs])
