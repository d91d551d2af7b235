"""Claim ahead: a batch's dedup claim goes out while the batch before it is handled, except
when the two share an idempotency key (the copy must see the earlier batch's marks). Settle
depth: a batch's before_commit() runs while the batch before it still settles, but batches are
marked done (and published, and committed) in order, and not at all after an earlier failure.

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
    nothing (waiting the poll's timeout, as a real poll does); stops the loop after a few
    empty polls in a row."""

    def __init__(self, batches: list[list[str]], stop: asyncio.Event) -> None:
        self._batches: list[list[Any]] = []
        offset = 0
        for keys in batches:
            self._batches.append([record(key, offset + i) for i, key in enumerate(keys)])
            offset += len(keys)
        self._next = 0
        self._empty_polls = 0
        self._stop = stop
        self.seeks: list[int] = []
        self.committed_offsets: list[int] = []

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        for batch in self._batches:
            polled = [r for r in batch if r.offset >= self._next]
            if polled:
                self._next = polled[-1].offset + 1
                self._empty_polls = 0
                return {PLAYER_ACTIONS.name: polled}
        self._empty_polls += 1
        if self._empty_polls >= 20:
            self._stop.set()
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    async def commit(self, offsets: dict[Any, int]) -> None:
        self.committed_offsets.append(max(offsets.values()))

    def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append(offset)
        self._next = offset
        self._empty_polls = 0

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
    """Journals each handle()."""

    name: ClassVar[str] = "ahead"
    version: ClassVar[str] = "1"
    group: ClassVar[ConsumerGroup] = GROUP

    def __init__(self, journal: list[str], *, fail_before_commits: int = 0) -> None:
        self.journal = journal

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ready(self) -> bool:
        return True

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        self.journal.append(f"handle {','.join(e.idempotency_key for e in batch)}")
        return [Outcome.applied() for _ in batch]


class SlowCommitProcessor(JournalProcessor):
    """Also has a before_commit() (journalled, slow; the first ones may fail)."""

    def __init__(self, journal: list[str], *, fail_before_commits: int = 0) -> None:
        super().__init__(journal)
        self.fail_before_commits = fail_before_commits
        self._before_commits = 0

    async def before_commit(self) -> None:
        """Journals its start and end; slow enough for the next batch to start settling."""
        self._before_commits += 1
        n = self._before_commits
        self.journal.append(f"before_commit {n}")
        await asyncio.sleep(0.05)
        if self.fail_before_commits:
            self.fail_before_commits -= 1
            raise DependencyUnavailableError("mysql: the test says it is down")
        self.journal.append(f"before_commit {n} done")


class NoOutbox:
    async def send_all(self, records: Sequence[OutboundRecord]) -> None:
        """Nothing to publish: the processor has no outputs."""


async def run_loop(
    batches: list[list[str]],
    *,
    settings: RuntimeSettings = SETTINGS,
    fail_claims: int = 0,
    processor: type[JournalProcessor] | None = None,
    fail_before_commits: int = 0,
) -> tuple[list[str], FakeConsumer]:
    journal: list[str] = []
    stop = asyncio.Event()
    consumer = FakeConsumer(batches, stop)
    dedup = JournalDedup(journal, fail_claims=fail_claims)
    metrics = RuntimeMetrics(CollectorRegistry())
    if processor is None:
        handler: JournalProcessor = JournalProcessor(journal)
    else:
        handler = processor(journal, fail_before_commits=fail_before_commits)
    loop = ConsumerLoop(
        consumer,
        Pipeline(handler, dedup, metrics, settings),
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


async def test_the_next_batch_starts_settling_while_the_one_before_still_does() -> None:
    journal, consumer = await run_loop([["a"], ["b"], ["c"]], processor=SlowCommitProcessor)

    # Batch 2's before_commit() starts while batch 1's still runs (settle depth 2), yet the
    # batches are marked done in order, each after its own before_commit()
    assert journal.index("before_commit 2") < journal.index("before_commit 1 done")
    marks = [line for line in journal if line.startswith("done")]
    assert marks == ["done b:w:1", "done b:w:2", "done b:w:3"]
    for n in (1, 2, 3):
        assert journal.index(f"before_commit {n} done") < journal.index(f"done b:w:{n}")
    assert consumer.committed_offsets[-1] == 3


async def test_with_settle_depth_one_a_batch_settles_after_the_one_before() -> None:
    settings = SETTINGS.model_copy(update={"settle_depth": 1})
    journal, _ = await run_loop([["a"], ["b"]], settings=settings, processor=SlowCommitProcessor)

    assert journal.index("done b:w:1") < journal.index("before_commit 2")


async def test_a_batch_settling_behind_a_failed_one_is_not_marked_and_both_are_redone() -> None:
    # Given a before_commit() that fails once: the first batch's
    journal, consumer = await run_loop(
        [["a"], ["b"]], processor=SlowCommitProcessor, fail_before_commits=1
    )

    # Then neither batch's first settle marked anything (the second waited for the first,
    # which failed), the loop sought back to the first batch, and both were redone in order
    marks = [line for line in journal if line.startswith("done")]
    assert "done b:w:1" not in marks and "done b:w:2" not in marks
    assert marks == ["done b:w:3", "done b:w:4"]
    assert consumer.seeks == [0]
    assert consumer.committed_offsets[-1] == 2
