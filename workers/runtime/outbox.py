"""Publishing what a batch produced (outputs, retries, dead letters) and waiting for every ack.

The input offsets are committed only after this returns, so nothing is lost if the process
dies in between: the batch is consumed again and dedup makes that harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from topics.settings import KafkaSettings
from workers.errors import DependencyUnavailableError
from workers.runtime.records import OutboundRecord


class Outbox:
    """A thin AIOKafkaProducer owner. `async with Outbox(settings) as outbox: ...`."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._producer = AIOKafkaProducer(
            **kafka.client_kwargs(),
            acks="all",
            enable_idempotence=kafka.enable_idempotence,
            linger_ms=5,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> Outbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def send_all(self, records: Sequence[OutboundRecord]) -> None:
        """Send in order; return once the broker acknowledged every record.

        A broker failure raises DependencyUnavailableError: the caller holds its position and
        sends the whole batch again later (duplicates downstream are deduplicated there).
        """
        if not records:
            return
        try:
            acks = [
                await self._producer.send(
                    record.topic, record.value, key=record.key, headers=list(record.headers)
                )
                for record in records
            ]
            await asyncio.gather(*acks)
        except KafkaError as exc:
            raise DependencyUnavailableError(f"kafka: {exc}") from exc
