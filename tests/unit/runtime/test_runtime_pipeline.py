"""Routing a batch by dedup decision and outcome, with a fake dedup store and processor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest
import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry

from schemas.codec import encode
from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import PLAYER_ACTIONS, REWARDS_GRANTED, ConsumerGroup
from workers.runtime import headers
from workers.runtime.dedup import Claim, ClaimedBatch, Deduplicator
from workers.runtime.metrics import RuntimeMetrics
from workers.runtime.pipeline import Pipeline
from workers.runtime.processor import Outcome, OutputEvent
from workers.runtime.records import InboundRecord
from workers.runtime.settings import RuntimeSettings

GROUP = ConsumerGroup("fake", (PLAYER_ACTIONS,), retry_delays_s=(10, 60))


@pytest.fixture(autouse=True)
def _logs_to_current_stdout() -> None:
    """Undo any configure_logging() an earlier CLI test ran: it caches a stream pytest closes."""
    structlog.reset_defaults()


class FakeDedup(Deduplicator):
    """Decisions from a dict; never talks to Redis (the client is never used)."""

    def __init__(self, decisions: dict[str, Claim]) -> None:
        super().__init__(
            aioredis.Redis(),
            prefix="x",
            processor="fake",
            worker_id="w",
            settings=RuntimeSettings(),
        )
        self.decisions = decisions
        self.claimed: list[str] = []

    async def claim(self, idempotency_keys: Sequence[str]) -> ClaimedBatch:
        self.claimed += idempotency_keys
        return ClaimedBatch(
            "b:w:1", [self.decisions.get(k, Claim.CLAIMED) for k in idempotency_keys]
        )


class ByPlayer:
    name: ClassVar[str] = "fake"
    version: ClassVar[str] = "3"
    group: ClassVar[ConsumerGroup] = GROUP

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ready(self) -> bool:
        return True

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        self.seen += [e.idempotency_key for e in batch]
        outcomes = []
        for e in batch:
            if e.player_id == "retry":
                outcomes.append(Outcome.retry("later"))
            elif e.player_id == "fail":
                outcomes.append(Outcome.failed("never"))
            elif e.player_id == "reject":
                outcomes.append(Outcome.rejected("over cap"))
            else:
                out = Envelope(event_id="o", idempotency_key="o", player_id=e.player_id)
                out.reward_granted.SetInParent()
                outcomes.append(Outcome.applied(OutputEvent(REWARDS_GRANTED, out)))
        return outcomes


def record(
    key: str, player: str, topic: str = PLAYER_ACTIONS.name, offset: int = 0
) -> InboundRecord:
    envelope = Envelope(event_id=key, idempotency_key=key, player_id=player)
    envelope.daily_login.SetInParent()
    return InboundRecord(topic, 0, offset, 1, player.encode(), encode(envelope), ())


async def test_each_decision_and_outcome_is_routed() -> None:
    dedup = FakeDedup({"done": Claim.DONE, "leased": Claim.LEASED})
    processor = ByPlayer()
    pipeline = Pipeline(processor, dedup, RuntimeMetrics(CollectorRegistry()), RuntimeSettings())
    records = [
        record("ok", "p"),
        record("ok", "p", offset=1),  # a copy within the batch
        record("done", "p"),
        record("leased", "p"),
        record("retry", "retry"),
        record("fail", "fail"),
        record("reject", "reject"),
        InboundRecord(PLAYER_ACTIONS.name, 0, 9, 1, b"k", b"\xff\xff garbage", ()),
    ]
    plan = await pipeline.plan(records)

    # Only claimed events reach the processor, each once
    assert processor.seen == ["ok", "retry", "fail", "reject"]
    assert dedup.claimed == ["ok", "done", "leased", "retry", "fail", "reject"]
    # Final outcomes are done with their batch; retried and failed ones released for later
    assert plan.claim_marker == "b:w:1"
    assert sorted(plan.release) == ["fail", "retry"]
    assert plan.outcomes == {"applied": 1, "duplicate": 2, "rejected": 1, "retry": 2, "failed": 2}
    by_topic: dict[str, list[InboundRecord]] = {}
    for out in plan.records:
        as_in = InboundRecord(out.topic, 0, 0, 0, out.key, out.value, out.headers)
        by_topic.setdefault(out.topic, []).append(as_in)
    assert len(by_topic[REWARDS_GRANTED.name]) == 1
    tier_one = by_topic[GROUP.retry_tiers[0].topic.name]
    assert sorted(r.header(headers.ERROR_CLASS) or "" for r in tier_one) == [
        "LeasedElsewhere",
        "RetryOutcome",
    ]
    dead = by_topic[GROUP.dead_letter.name]
    assert sorted(r.header(headers.ERROR_CLASS) or "" for r in dead) == [
        "FailedOutcome",
        "UndecodableEventError",
    ]
    assert all(r.header(headers.PROCESSOR_VERSION) == "3" for r in dead)


async def test_retry_from_the_last_tier_is_dead_lettered() -> None:
    pipeline = Pipeline(
        ByPlayer(), FakeDedup({}), RuntimeMetrics(CollectorRegistry()), RuntimeSettings()
    )
    last_tier = GROUP.retry_tiers[-1].topic.name
    first_tier = GROUP.retry_tiers[0].topic.name
    plan = await pipeline.plan([record("a", "retry", last_tier), record("b", "retry", first_tier)])
    assert sorted(r.topic for r in plan.records) == sorted(
        [GROUP.dead_letter.name, GROUP.retry_tiers[1].topic.name]
    )
