"""handle_batch: bisect around guilty events, bounded in-process retries, dependency errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pymysql
import pytest
import redis.exceptions
import structlog

from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import PLAYER_ACTIONS, ConsumerGroup
from workers.errors import DependencyUnavailableError, PermanentError, TransientError
from workers.runtime.handling import handle_batch
from workers.runtime.processor import Outcome, OutcomeKind


@pytest.fixture(autouse=True)
def _logs_to_current_stdout() -> None:
    """Undo any configure_logging() an earlier CLI test ran: it caches a stream pytest closes."""
    structlog.reset_defaults()


class ScriptedProcessor:
    """Fails according to player ids; records every batch it was handed."""

    name: ClassVar[str] = "scripted"
    version: ClassVar[str] = "1"
    group: ClassVar[ConsumerGroup] = ConsumerGroup("scripted", (PLAYER_ACTIONS,))

    def __init__(self, transient_failures: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.transient_failures = transient_failures

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def ready(self) -> bool:
        return True

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        players = [e.player_id for e in batch]
        self.calls.append(players)
        if "down" in players:
            raise redis.exceptions.ConnectionError("connection refused")
        if "deadlock" in players:
            raise pymysql.err.OperationalError(1213, "Deadlock found")
        if "bad" in players:
            raise PermanentError("bad player")
        if "crash" in players:
            raise ZeroDivisionError("division by zero")
        if "short" in players:
            return []
        if "slow-store" in players and self.transient_failures > 0:
            self.transient_failures -= 1
            raise TransientError("store answered 503")
        return [Outcome.applied() for _ in batch]


def batch(*players: str) -> list[Envelope]:
    return [Envelope(event_id=p, idempotency_key=p, player_id=p) for p in players]


async def test_bisect_dead_letters_only_the_guilty_events() -> None:
    processor = ScriptedProcessor()
    verdicts = await handle_batch(
        processor, batch("a", "bad", "c", "d", "crash", "f"), transient_budget_s=0
    )
    kinds = [v.outcome.kind for v in verdicts]
    assert kinds == [
        OutcomeKind.APPLIED,
        OutcomeKind.FAILED,
        OutcomeKind.APPLIED,
        OutcomeKind.APPLIED,
        OutcomeKind.FAILED,
        OutcomeKind.APPLIED,
    ]
    assert verdicts[1].failure is not None
    assert verdicts[1].failure.error_class == "PermanentError"
    crash = verdicts[4].failure
    assert crash is not None
    assert crash.error_class == "ZeroDivisionError"
    assert len(crash.stack_digest) == 12
    # every good event was applied exactly once
    handled_alone_or_in_good_parts = [
        c for c in processor.calls if "bad" not in c and "crash" not in c
    ]
    applied = [p for call in handled_alone_or_in_good_parts for p in call]
    assert sorted(applied) == ["a", "c", "d", "f"]


async def test_wrong_number_of_outcomes_is_a_failure_not_a_crash() -> None:
    verdicts = await handle_batch(ScriptedProcessor(), batch("short"), transient_budget_s=0)
    assert [v.outcome.kind for v in verdicts] == [OutcomeKind.FAILED]


async def test_transient_error_retried_in_process_within_budget() -> None:
    processor = ScriptedProcessor(transient_failures=2)
    verdicts = await handle_batch(processor, batch("slow-store", "b"), transient_budget_s=5)
    assert [v.outcome.kind for v in verdicts] == [OutcomeKind.APPLIED] * 2
    assert len(processor.calls) == 3


async def test_transient_error_past_budget_sends_the_whole_batch_to_retry() -> None:
    processor = ScriptedProcessor(transient_failures=100)
    verdicts = await handle_batch(processor, batch("slow-store", "b"), transient_budget_s=0)
    assert [v.outcome.kind for v in verdicts] == [OutcomeKind.RETRY] * 2
    assert all(v.failure and v.failure.error_class == "TransientError" for v in verdicts)


async def test_mysql_deadlock_counts_as_transient() -> None:
    verdicts = await handle_batch(ScriptedProcessor(), batch("deadlock"), transient_budget_s=0)
    assert [v.outcome.kind for v in verdicts] == [OutcomeKind.RETRY]


async def test_dependency_down_propagates_to_hold_position() -> None:
    with pytest.raises(DependencyUnavailableError, match="redis"):
        await handle_batch(ScriptedProcessor(), batch("a", "down"), transient_budget_s=0)
