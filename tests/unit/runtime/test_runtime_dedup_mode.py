"""DedupMode: who guards an event against a second application, the runtime or the processor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest
import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry

from schemas.codec import encode
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import PLAYER_ACTIONS, ConsumerGroup
from workers.runtime.dedup import ClaimedBatch, Deduplicator
from workers.runtime.metrics import RuntimeMetrics
from workers.runtime.pipeline import Pipeline
from workers.runtime.processor import DedupMode, Outcome, dedup_mode_of
from workers.runtime.records import InboundRecord
from workers.runtime.settings import RuntimeSettings

GROUP = ConsumerGroup("fake", (PLAYER_ACTIONS,), retry_delays_s=(10,))


@pytest.fixture(autouse=True)
def _logs_to_current_stdout() -> None:
    structlog.reset_defaults()


class NoRedis(Deduplicator):
    """Fails the test if the runtime asks Redis anything."""

    def __init__(self) -> None:
        super().__init__(
            aioredis.Redis(),
            prefix="x",
            processor="fake",
            worker_id="w",
            settings=RuntimeSettings(),
        )

    async def claim(self, idempotency_keys: Sequence[str]) -> ClaimedBatch:
        raise AssertionError("a PROCESSOR-guarded batch must not be claimed")


class SelfGuarded:
    """Reports DUPLICATE for keys it has seen, as an atomic check-and-set effect would."""

    name: ClassVar[str] = "fake"
    version: ClassVar[str] = "1"
    group: ClassVar[ConsumerGroup] = GROUP
    dedup: ClassVar[DedupMode] = DedupMode.PROCESSOR

    def __init__(self) -> None:
        self.done: set[str] = set()

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ready(self) -> bool:
        return True

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        outcomes = []
        for envelope in batch:
            if envelope.player_id == "retry":
                outcomes.append(Outcome.retry("later"))
            elif envelope.idempotency_key in self.done:
                outcomes.append(Outcome.duplicate())
            else:
                self.done.add(envelope.idempotency_key)
                outcomes.append(Outcome.applied())
        return outcomes


class Undeclared:
    name: ClassVar[str] = "plain"
    version: ClassVar[str] = "1"
    group: ClassVar[ConsumerGroup] = GROUP


def record(key: str, player: str = "p", offset: int = 0) -> InboundRecord:
    envelope = Envelope(event_id=key, idempotency_key=key, player_id=player)
    envelope.daily_login.SetInParent()
    envelope.received_at.GetCurrentTime()
    return InboundRecord(PLAYER_ACTIONS.name, 0, offset, 1, player.encode(), encode(envelope))


def test_a_processor_that_declares_nothing_is_guarded_by_the_runtime() -> None:
    assert dedup_mode_of(Undeclared()) is DedupMode.RUNTIME  # type: ignore[arg-type]  # a stub
    assert dedup_mode_of(SelfGuarded()) is DedupMode.PROCESSOR


async def test_processor_mode_skips_claim_and_marks_yet_counts_every_duplicate() -> None:
    processor = SelfGuarded()
    pipeline = Pipeline(
        processor, NoRedis(), RuntimeMetrics(CollectorRegistry()), RuntimeSettings()
    )

    # Given a batch with a copy inside it, then a redelivery of the same events
    first = await pipeline.plan([record("a"), record("a", offset=1), record("b", offset=2)])
    again = await pipeline.plan([record("a", offset=3), record("r", "retry", offset=4)])

    # Then nothing is left for the runtime to mark or release in Redis
    assert (first.claim_marker, first.release, again.claim_marker, again.release) == (
        "",
        [],
        "",
        [],
    )
    # And the copy in the batch and the redelivery are both counted as duplicates
    assert first.outcomes == {"applied": 2, "duplicate": 1}
    assert again.outcomes == {"duplicate": 1, "retry": 1}
    # And final events carry their receive time for the end-to-end latency
    assert len(first.received_s) == 2
    assert [r.topic for r in again.records] == [GROUP.retry_tiers[0].topic.name]


async def test_end_to_end_latency_is_observed_per_final_event_when_counted() -> None:
    registry = CollectorRegistry()
    pipeline = Pipeline(SelfGuarded(), NoRedis(), RuntimeMetrics(registry), RuntimeSettings())
    plan = await pipeline.plan([record(f"k{i}", offset=i) for i in range(5)])

    pipeline.count(plan)

    observed = registry.get_sample_value("liveops_end_to_end_seconds_count", {"processor": "fake"})
    assert observed == 5


async def test_an_event_without_a_receive_time_is_counted_but_not_observed() -> None:
    # Given one event the gateway stamped and one that carries no receive time
    registry = CollectorRegistry()
    pipeline = Pipeline(SelfGuarded(), NoRedis(), RuntimeMetrics(registry), RuntimeSettings())
    unstamped = Envelope(event_id="u", idempotency_key="u", player_id="p")
    unstamped.daily_login.SetInParent()
    bare = InboundRecord(PLAYER_ACTIONS.name, 0, 1, 1, b"p", encode(unstamped))

    # When both are handled and counted
    plan = await pipeline.plan([record("s"), bare])
    pipeline.count(plan)

    # Then both are applied, and only the stamped one has a latency (no 56-year outlier)
    assert plan.outcomes == {"applied": 2}
    assert len(plan.received_s) == 1 and plan.received_s[0] > 1_700_000_000
    observed = registry.get_sample_value("liveops_end_to_end_seconds_count", {"processor": "fake"})
    assert observed == 1
