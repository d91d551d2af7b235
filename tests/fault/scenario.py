"""One fault test's world: its group and topics, its workers, its slice of MySQL and Redis.

    scenario = await make_scenario(kind="rewards")  # fixture: topics created, nothing running
    plan = scenario.build_plan(events=2000)      # events the scenario's processor understands
    ends = await scenario.preload(plan.records)  # the whole plan on the input topic
    worker = scenario.start_worker("a")          # a real process
    await scenario.wait_progress(len(plan.expected) // 3)
    worker.kill(); scenario.start_worker("b")
    await scenario.settle(plan, ends)            # exact, or fails listing what is wrong

Every wait polls real state with a deadline; none sleeps a fixed time to let things happen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from topics.catalog import ConsumerGroup, Topic
from topics.settings import KafkaSettings
from workers.runtime import headers

from .broker import ConsumedRecord, committed_offsets, lag, read_all, wait_until_committed
from .events import (
    EXPECTED_ERROR_CLASS,
    EXPECTED_REASON,
    MARKER_HEADER,
    EventPlan,
    Record,
    build_plan,
    produce,
)
from .kinds import EffectReader, PreparedKind
from .worker import WorkerConfig, WorkerProcess

SETTLE_TIMEOUT_S = 60.0


class FaultTestError(AssertionError):
    """The run did not end in the exact expected state; the message says how, with logs."""


@dataclass
class Scenario:
    group: ConsumerGroup
    kafka: KafkaSettings
    kind: PreparedKind
    config: WorkerConfig
    workers: list[WorkerProcess] = field(default_factory=list)
    #: End offset per input partition of everything preloaded (from the producer's acks).
    ends: dict[TopicPartition, int] = field(default_factory=dict)

    @property
    def source(self) -> Topic:
        return self.group.inputs[0]

    @property
    def reader(self) -> EffectReader:
        return self.kind.reader

    def build_plan(
        self, *, events: int, copies: tuple[int, ...] = (1,), garbage_every: int = 0
    ) -> EventPlan:
        """A plan of `events` events of the scenario's processor, ids under the test's name."""
        return build_plan(
            self.config.group,
            events=events,
            copies=copies,
            garbage_every=garbage_every,
            payload=self.kind.fill,
        )

    def start_worker(self, name: str) -> WorkerProcess:
        worker = WorkerProcess(self.config, name).start()
        self.workers.append(worker)
        return worker

    async def preload(self, records: Sequence[Record]) -> dict[TopicPartition, int]:
        """Put records on the input topic; the end offsets of everything preloaded so far."""
        for tp, end in (await produce(self.kafka, self.source, records)).items():
            self.ends[tp] = max(self.ends.get(tp, 0), end)
        return dict(self.ends)

    async def wait_progress(self, applied: int, *, timeout_s: float = 60.0) -> int:
        """Wait until at least `applied` events have a durable effect; fails if they do not."""
        deadline = time.monotonic() + timeout_s
        while (reached := await self.reader.applied_count()) < applied:
            if time.monotonic() > deadline:
                self.fail(f"only {reached} of {applied} events applied within {timeout_s} s")
            await asyncio.sleep(0.1)
        return reached

    async def settle(
        self,
        plan: EventPlan,
        ends: dict[TopicPartition, int],
        *,
        redis_lost: bool = False,
        timeout_s: float = SETTLE_TIMEOUT_S,
    ) -> None:
        """Wait for the run to end, then require the exact expected state (what Redis held
        is not required when `redis_lost`: the test flushed it).

        1. poll the effects until they match the plan (a wrong state never becomes right by
           itself: lost events stay lost and doubled counts stay doubled), or the deadline;
        2. wait until the group committed every input record (the duplicates are past too);
        3. wait until the retry consumer committed every record sent to the retry tiers;
        4. read once more: no late double may have slipped in after step 1.
        """
        deadline = time.monotonic() + timeout_s
        problems = await self._poll_exact(plan, redis_lost, deadline)
        if problems:
            self.fail("final state differs from the plan:\n" + "\n".join(problems))
        left = await wait_until_committed(
            self.kafka, self.group.name, ends, timeout_s=max(deadline - time.monotonic(), 1.0)
        )
        if left:
            self.fail(f"{left} input records never committed by {self.group.name}")
        await self._wait_retries_committed(deadline)
        problems = await self.reader.problems(plan, redis_lost=redis_lost)
        if problems:
            self.fail("state changed after it was exact:\n" + "\n".join(problems))

    async def dead_letters(self, expected: int, *, timeout_s: float = 20.0) -> list[ConsumedRecord]:
        return await read_all(
            self.kafka, self.group.dead_letter, expected=expected, timeout_s=timeout_s
        )

    async def expect_dead_letters(self, plan: EventPlan) -> None:
        """Require the dead-letter topic to hold exactly the plan's garbage, each record once,
        with its key and the headers that say why it failed, where it came from and which
        processor sent it there; fails listing every difference."""
        letters = await self.dead_letters(expected=len(plan.garbage))
        problems = dead_letter_problems(plan, letters, self.source.name, self.kind.name)
        if problems:
            self.fail("dead letters differ from the plan's garbage:\n" + "\n".join(problems))

    def fail(self, message: str) -> None:
        tails = "\n".join(worker.log_tail() for worker in self.workers)
        raise FaultTestError(f"{message}\n{tails}")

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()

    async def _poll_exact(self, plan: EventPlan, redis_lost: bool, deadline: float) -> list[str]:
        while True:
            problems = await self.reader.problems(plan, redis_lost=redis_lost)
            if not problems or time.monotonic() > deadline:
                return problems
            await asyncio.sleep(0.25)

    async def _wait_retries_committed(self, deadline: float) -> None:
        tiers = tuple(tier.topic for tier in self.group.retry_tiers)
        ends: dict[TopicPartition, int] = {}
        for topic in tiers:
            for record in await read_all(self.kafka, topic, expected=0, timeout_s=2.0):
                tp = TopicPartition(topic.name, record.partition)
                ends[tp] = max(ends.get(tp, 0), record.offset + 1)
        if not ends:
            return
        group_id = f"{self.group.name}.retry"
        while True:
            left = lag(ends, await committed_offsets(self.kafka, group_id, ends))
            if not left:
                return
            if time.monotonic() > deadline:
                self.fail(f"{left} retry records never committed by {group_id}")
            await asyncio.sleep(0.25)


def dead_letter_problems(
    plan: EventPlan, letters: Sequence[ConsumedRecord], source: str, processor: str
) -> list[str]:
    """Every way `letters` differ from one dead letter per garbage record of `plan`, each
    naming the error class and reason its kind must give, its origin and `processor`."""
    by_marker: dict[str, list[ConsumedRecord]] = {}
    for letter in letters:
        marker = letter.headers.get(MARKER_HEADER, b"").decode()
        by_marker.setdefault(marker, []).append(letter)
    problems: list[str] = []
    missing = sorted(set(plan.garbage) - set(by_marker))
    if missing:
        problems.append(f"{len(missing)} garbage records not dead-lettered, e.g. {missing[:3]}")
    strangers = sorted(set(by_marker) - set(plan.garbage))
    if strangers:
        problems.append(f"{len(strangers)} dead letters that are not our garbage: {strangers[:3]}")
    doubled = sorted(marker for marker, found in by_marker.items() if len(found) > 1)
    if doubled:
        problems.append(f"{len(doubled)} garbage records dead-lettered twice, e.g. {doubled[:3]}")
    for marker, kind in sorted(plan.garbage.items()):
        for letter in by_marker.get(marker, [])[:1]:
            found = {name: value.decode() for name, value in letter.headers.items()}
            wrong = [
                f"{name}={found.get(name)!r}"
                for name, wanted in (
                    (headers.ERROR_CLASS, EXPECTED_ERROR_CLASS[kind]),
                    (headers.ORIGINAL_TOPIC, source),
                    (headers.PROCESSOR, processor),
                )
                if found.get(name) != wanted
            ]
            if EXPECTED_REASON[kind] not in found.get(headers.ERROR_MESSAGE, ""):
                wrong.append(f"{headers.ERROR_MESSAGE}={found.get(headers.ERROR_MESSAGE)!r}")
            if not found.get(headers.ORIGINAL_OFFSET, "").isdigit():
                wrong.append(f"{headers.ORIGINAL_OFFSET}={found.get(headers.ORIGINAL_OFFSET)!r}")
            if letter.key != marker.encode():
                wrong.append(f"key {letter.key!r}")
            if wrong:
                problems.append(f"dead letter {marker} ({kind}): " + ", ".join(wrong))
    return problems
