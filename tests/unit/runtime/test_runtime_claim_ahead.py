"""Claim ahead: a batch's dedup claim goes out while the batch before it is handled, except
when the two share an idempotency key (the copy must see the earlier batch's marks).

A fake consumer hands out prepared batches; a fake dedup store and processor write what
happens, in order, into one journal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar

import pytest
import redis.asyncio as aioredis
import structlog
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from schemas.codec import encode
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import PLAYER_ACTIONS, ConsumerGroup
from workers.errors import DependencyUnavailableError
from workers.runtime.dedup import Claim, ClaimedBatch, Deduplicator
from workers.runtime.loop import ConsumerLoop, Progress
from workers.runtime.metrics import RuntimeMetrics
from workers.runtime.pipeline import Pipeline
from workers.runtime.processor import Outcome
from workers.runtime.records import OutboundRecord
from workers.runtime.settings import RuntimeSettings

GROUP = ConsumerGroup("ahead", (PLAYER_ACTIONS,), retry_delays_s=())
SETTINGS = RuntimeSettings(backoff_initial_s=0.01, backoff_max_s=0.01)


@pytest.fixture(autouse=True)
def _logs_to_current_stdout() -> None:
    """Undo any configure_logging() an earlier CLI test ran: it caches a stream pytest closes."""
    structlog.reset_defaults()


def record(key: str, offset: int) -> Any:
    """What aiokafka's getmany hands out (the attributes InboundRecord reads)."""
    envelope = Envelope(event_id=key, idempotency_key=key, player_id="p")
    envelope.daily_login.SetInParent()
    return ConsumerRecord(
        PLAYER_ACTIONS.name, 0, offset, 1, 0, b"p", encode(envelope), None, 0, 0, []
    )


class FakeConsumer:
    """Hands out the prepared batches one per poll (seek() rewinds to an offset), then
    nothing; stops the loop once drained."""

    def __init__(self, batches: list[list[str]], stop: asyncio.Event) -> None:
        self._batches: list[list[Any]] = []
        offset = 0
        for keys in batches:
            self._batches.append([record(key, offset + i) for i, key in enumerate(keys)])
            offset += len(keys)
        self._next = 0
        self._stop = stop
        self.seeks: list[int] = []
        self.committed_offsets: list[int] = []

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        for batch in self._batches:
            polled = [r for r in batch if r.offset >= self._next]
            if polled:
                self._next = polled[-1].offset + 1
                return {PLAYER_ACTIONS.name: polled}
        self._stop.set()
        await asyncio.sleep(0)
        return {}

    async def commit(self, offsets: dict[Any, int]) -> None:
        self.committed_offsets.append(max(offsets.values()))

    def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append(offset)
        self._next = offset

    def assignment(self) -> set[Any]:
        return set()


class JournalDedup(Deduplicator):
    """Claims everything (its answer delayed a little, like a round trip); journals calls."""

    def __init__(self, journal: list[str], *, fail_claims: int = 0) -> None:
        super().__init__(
            aioredis.Redis(), prefix="x", processor="ahead", worker_id="w", settings=SETTINGS
        )
        self.journal = journal
        self.fail_claims = fail_claims
        self._batch = 0

    async def claim(self, idempotency_keys: Sequence[str]) -> ClaimedBatch:
        self.journal.append(f"claim {','.join(idempotency_keys)}")
        await asyncio.sleep(0.01)
        if self.fail_claims:
            self.fail_claims -= 1
            raise DependencyUnavailableError("redis: the test says it is down")
        self._batch += 1
        n = len(idempotency_keys)
        return ClaimedBatch(f"b:w:{self._batch}", [Claim.CLAIMED] * n, True)

    async def finish(self, marker: str, release: Sequence[str] = ()) -> None:
        self.journal.append(f"done {marker}")


class JournalProcessor:
    name: ClassVar[str] = "ahead"
    version: ClassVar[str] = "1"
    group: ClassVar[ConsumerGroup] = GROUP

    def __init__(self, journal: list[str]) -> None:
        self.journal = journal

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ready(self) -> bool:
        return True

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        self.journal.append(f"handle {','.join(e.idempotency_key for e in batch)}")
        return [Outcome.applied() for _ in batch]


class NoOutbox:
    async def send_all(self, records: Sequence[OutboundRecord]) -> None:
        """Nothing to publish: the processor has no outputs."""


async def run_loop(
    batches: list[list[str]], *, settings: RuntimeSettings = SETTINGS, fail_claims: int = 0
) -> tuple[list[str], FakeConsumer]:
    journal: list[str] = []
    stop = asyncio.Event()
    consumer = FakeConsumer(batches, stop)
    dedup = JournalDedup(journal, fail_claims=fail_claims)
    metrics = RuntimeMetrics(CollectorRegistry())
    loop = ConsumerLoop(
        consumer,
        Pipeline(JournalProcessor(journal), dedup, metrics, settings),
        outbox=NoOutbox(),  # type: ignore[arg-type]  # only send_all is used
        dedup=dedup,
        metrics=metrics,
        settings=settings,
        progress=Progress(),
        max_records=500,
        poll_ms=10,
    )
    await asyncio.wait_for(loop.run(stop), timeout=10)
    return journal, consumer


def handles_and_claims(journal: list[str]) -> list[str]:
    return [line for line in journal if not line.startswith("done")]


async def test_the_next_batch_is_claimed_before_this_one_is_handled() -> None:
    journal, consumer = await run_loop([["a", "b"], ["c", "d"], ["e"]])

    assert handles_and_claims(journal) == [
        "claim a,b",
        "claim c,d",
        "handle a,b",
        "claim e",
        "handle c,d",
        "handle e",  # nothing more to poll: the batch ahead is handled at once
    ]
    assert journal.count("done b:w:1") == 1
    assert consumer.committed_offsets[-1] == 5


async def test_a_batch_holding_a_copy_is_claimed_after_the_earlier_batch_settled() -> None:
    journal, _ = await run_loop([["a", "b"], ["b", "c"], ["d"]])

    # The second batch shares "b" with the first: the first is handled and settles (marked
    # done) before the copy is claimed, then handled at once; the third is claimed ahead again
    assert journal.index("done b:w:1") < journal.index("claim b,c")
    assert handles_and_claims(journal) == [
        "claim a,b",
        "handle a,b",
        "claim b,c",
        "handle b,c",
        "claim d",
        "handle d",
    ]


async def test_without_claim_ahead_each_batch_is_claimed_then_handled() -> None:
    settings = SETTINGS.model_copy(update={"claim_ahead": False})
    journal, _ = await run_loop([["a"], ["b"]], settings=settings)

    assert handles_and_claims(journal) == ["claim a", "handle a", "claim b", "handle b"]


async def test_a_failed_claim_ahead_polls_both_batches_again() -> None:
    # Given a Redis that fails the first claim (the first batch's, sent ahead)
    journal, consumer = await run_loop([["a"], ["b"]], fail_claims=1)

    # Then the loop seeks back to the first batch's start, having handled nothing, and
    # handles both batches once, in order, when the claims work again
    assert consumer.seeks == [0]
    assert handles_and_claims(journal) == [
        "claim a",
        "claim b",
        "claim a",
        "claim b",
        "handle a",
        "handle b",
    ]
    assert consumer.committed_offsets[-1] == 2
