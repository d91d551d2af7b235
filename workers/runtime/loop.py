"""The consume loop of one processor: the only place offsets are committed.

Per batch, in this order; each step starts only once the one before it is durable:
1. Poll: `getmany(max_records, timeout_ms=linger_ms)`; auto commit off, earliest offset reset.
2. Decode and validate each record; a ContractError is dead-lettered at once with the reason.
3. Dedup claim in Redis, one round trip: DONE -> duplicate (skipped), LEASED by another
   worker -> first retry tier, CLAIMED -> handle. A processor guarded by itself
   (DedupMode.PROCESSOR, processor.py) skips it: its atomic check reports the repeats.
4. processor.handle(claimed events) -> one outcome per event (TransientError retried in
   process, then retry tier; PermanentError or a crash bisected down to the guilty events).
Then the batch settles (steps 5-8, `_settle`):
5. processor.before_commit(), when it has one: the rest of its effects made durable.
6. Publish outputs, retry records and dead letters; await every broker ack.
7. Mark the batch done in Redis (one round trip; DedupMode.RUNTIME only): its applied and
   rejected events are done; release the markers of retried and dead-lettered ones, so a
   retry or a dlq replay runs them again.
8. Stage the next offset of every partition in the batch (staging.py) and count the
   outcomes; commit the staged offsets when `commit_interval_ms` has passed since the last
   commit (0: every batch), when the loop finds nothing new to poll, before partitions are
   revoked, and at stop. A commit only ever covers settled batches; a crash before it
   replays them, and dedup turns the replay into duplicates (what committing every batch
   would cost: a broker round trip per batch, on the loop's critical path).
Pipelined (LIVEOPS_RUNTIME__PIPELINE, input loops only): batch N settles while batch N+1 is
polled, decoded, claimed and handled; N+1 settles only after N has settled, so outputs
and commits keep their order. A batch holding an idempotency key of the batch still settling
waits for it before its claim (our own lease would let the copy through). The overlap hides
the round trips of steps 5-8 behind the next batch's work; nothing is committed earlier.
Claim ahead (LIVEOPS_RUNTIME__CLAIM_AHEAD, DedupMode.RUNTIME input loops): step 3 of batch
N+1 is sent as soon as N+1 is decoded, before N is handled, so Redis works on the claim
while this process handles N; handling stays in poll order. A batch sharing a key with the
batch ahead or the one settling is not claimed ahead (same reason as above). The batch ahead
is handled as soon as a poll finds nothing more buffered (that poll does not wait), before
partitions are revoked, and at stop.
DependencyUnavailableError at any step: seek back to the start of every batch not committed
(the one settling and the one claimed ahead too), report not ready, back off (capped,
jittered) and poll again; nothing is committed, nothing goes to retry topics. Order is kept
per partition (records are keyed by player id). The retry loop (retry.py) is this loop, not
pipelined, with due-time selection in front of step 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from topics.lag import lag_of
from topics.offsets import EndOffsetReader, EndOffsetsUnconfirmedError
from workers.errors import DependencyUnavailableError
from workers.runtime.dedup import Deduplicator
from workers.runtime.failures import backoff_s
from workers.runtime.metrics import PartitionSeries, RuntimeMetrics
from workers.runtime.outbox import Outbox
from workers.runtime.pipeline import Pipeline, Plan
from workers.runtime.processor import DedupMode
from workers.runtime.records import InboundRecord
from workers.runtime.settings import RuntimeSettings
from workers.runtime.staging import StagedOffsets

log = structlog.get_logger(__name__)
_KNOWN_DEPENDENCIES = frozenset({"redis", "mysql", "kafka"})


@dataclass
class Progress:
    """Shared by the loops of a worker: for runner mode, /healthz and /readyz."""

    events: int = 0
    last_event_at: float = field(default_factory=time.monotonic)
    last_iteration_at: float = field(default_factory=time.monotonic)
    #: Retry records polled but not yet due (a worker waiting for them is not idle).
    waiting: int = 0
    #: Dependencies each loop (by id) found failing on its last attempt.
    down_by_loop: dict[int, set[str]] = field(default_factory=dict)
    #: When a list (benchmarks), each settled batch appends (polled_at, settled_at, size,
    #: cpu_s): perf_counter seconds (settled: effects durable, outputs acked, offsets
    #: staged), and this process's CPU time (time.process_time) at the settle.
    batch_log: list[tuple[float, float, int, float]] | None = None

    @property
    def down(self) -> set[str]:
        """Dependencies some loop is holding position for (redis, mysql, kafka, processor)."""
        return set().union(*self.down_by_loop.values())


@dataclass(frozen=True, slots=True)
class _Settling:
    """The batch whose steps 5-8 run (as `task`) while the next one is polled and handled."""

    task: asyncio.Task[None]
    records: Sequence[InboundRecord]
    #: Its idempotency keys, when the runtime claims them (DedupMode.RUNTIME).
    keys: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Ahead:
    """A batch decoded and being claimed (`claim`, step 3) while the batch before it is
    handled: the claim's round trip and Redis's work overlap the loop's Python work."""

    records: Sequence[InboundRecord]
    plan: Plan
    claim: asyncio.Task[None]
    polled_at: float


class ConsumerLoop:
    """Runs steps 1-8 until `stop` is set; one per consumer (input or retry) of a processor."""

    #: Whether this kind of loop may settle a batch while it handles the next (retry.py: no).
    may_overlap: ClassVar[bool] = True

    def __init__(
        self,
        consumer: Any,
        pipeline: Pipeline,
        *,
        outbox: Outbox,
        dedup: Deduplicator,
        metrics: RuntimeMetrics,
        settings: RuntimeSettings,
        progress: Progress,
        max_records: int,
        poll_ms: int,
        end_offsets: EndOffsetReader | None = None,
    ) -> None:
        """`end_offsets` reads the partition ends for the lag metric; None measures no lag."""
        self.consumer = consumer
        self.pipeline = pipeline
        self._outbox = outbox
        self._dedup = dedup
        self._metrics = metrics
        self._settings = settings
        self.progress = progress
        self._max_records = max_records
        self._poll_ms = poll_ms
        self._end_offsets = end_offsets
        self._name = pipeline.processor.name
        #: Set between batches; the rebalance listener waits for it before partitions move.
        self.idle = asyncio.Event()
        self.idle.set()
        self._failures = 0
        self._lag_at = 0.0
        #: The lag series of this loop's partitions (forget_lag() drops the ones it loses).
        self._lag = PartitionSeries(
            metrics.consumer_lag, lambda tp: (tp.topic, str(tp.partition), self._name)
        )
        self._overlaps = self.may_overlap and settings.pipeline
        self._tracks_keys = pipeline.dedup_mode is DedupMode.RUNTIME
        self._claims_ahead = self._overlaps and self._tracks_keys and settings.claim_ahead
        self._processing = False
        self._settling: _Settling | None = None
        self._ahead: _Ahead | None = None
        #: Records of the batch being claimed or handled (polled again if that fails).
        self._in_hand: Sequence[InboundRecord] = ()
        #: Set by the rebalance listener: claim nothing ahead, so the loop can become idle.
        self.revoking = False
        #: Offsets of settled batches not committed yet, and when to commit them.
        self._offsets = StagedOffsets(
            consumer, interval_ms=settings.commit_interval_ms, processor=self._name
        )
        #: Records of a batch whose settling failed: polled again from their start.
        self._unsettled: list[InboundRecord] = []

    def listener(self) -> ConsumerRebalanceListener:
        return _FinishBatchOnRevoke(self)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                await self._iterate(stop)
        finally:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                self._drop_ahead()  # past the shutdown deadline: give up on these
                if self._settling is not None:
                    self._settling.task.cancel()
            await self._drain()

    async def _iterate(self, stop: asyncio.Event) -> None:
        self.progress.last_iteration_at = time.monotonic()
        self._before_poll()
        records: list[InboundRecord] = []
        try:
            records = await self._poll()
            self._mark_up({"kafka"})
            self._processing = True
            self.idle.clear()
            polled_at = time.perf_counter()
            selected = self._select(records)
            if selected:
                await self._run_batch(selected, polled_at)
            elif self._ahead is not None:
                await self._handle_ahead()  # nothing more buffered: handle it now
            else:
                if self._settling is not None and self._settling.task.done():
                    await self._settled()  # nothing new: collect the batch settled (or failed)
                if self._settling is None:
                    await self.commit_staged()  # quiet: no reason to wait for the interval
        except DependencyUnavailableError as exc:
            in_hand = [*self._in_hand, *self._drop_ahead(), *records]
            with contextlib.suppress(DependencyUnavailableError):
                await self._settled(in_hand)  # a batch settling goes first: it settles, or
                # it is polled again with these
            await self._hold_position([*self._unsettled, *in_hand], exc, stop)
        finally:
            self._unsettled = []
            self._in_hand = ()
            self._processing = False
            self._set_idle_if_quiet()
        await self._measure_lag()

    def _mark_up(self, only: set[str] | None = None) -> None:
        """This loop saw `only` (default: every dependency) work again."""
        mine = self.progress.down_by_loop.get(id(self))
        if not mine:
            return
        recovered = mine & only if only is not None else set(mine)
        mine -= recovered
        if not mine:
            del self.progress.down_by_loop[id(self)]
            self._failures = 0
        for dependency in recovered - self.progress.down:
            self._metrics.dependency_up.labels(dependency).set(1)

    async def _poll(self) -> list[InboundRecord]:
        # A batch waiting ahead is handled as soon as nothing more is buffered: never wait.
        timeout_ms = 0 if self._ahead is not None else self._poll_ms
        try:
            polled = await self.consumer.getmany(
                timeout_ms=timeout_ms, max_records=self._max_records
            )
        except KafkaError as exc:
            raise DependencyUnavailableError(f"kafka: {exc}") from exc
        return [InboundRecord.from_consumer(r) for rs in polled.values() for r in rs]

    def _before_poll(self) -> None:
        """Hook for the retry loop: resume partitions whose records are due."""

    def _select(self, records: list[InboundRecord]) -> list[InboundRecord]:
        """Hook for the retry loop: keep the records that are due. Input records all are."""
        return records

    async def _run_batch(self, records: Sequence[InboundRecord], polled_at: float) -> None:
        for topic, n in Counter(record.topic for record in records).items():
            self._metrics.events_consumed.labels(topic, self._name).inc(n)
        self._metrics.batch_size.labels(self._name).observe(len(records))
        plan = self.pipeline.decode(records)  # step 2
        if self._claims_ahead and not self.revoking and self._apart(plan):
            ahead = self._ahead
            claim = asyncio.create_task(self.pipeline.claim(plan))  # step 3, in flight
            self._ahead = _Ahead(records, plan, claim, polled_at)
            await asyncio.sleep(0)  # the claim request goes out before the handling below
            if ahead is not None:
                await self._handle(ahead.records, ahead.plan, ahead.polled_at, ahead.claim)
            return
        await self._handle_ahead()  # batches are handled in the order polled
        if self._settling is not None and not self._settling.keys.isdisjoint(plan.keys):
            await self._settled(records)  # the copy must see the earlier batch's marks
        await self._handle(records, plan, polled_at, None)

    def _apart(self, plan: Plan) -> bool:
        """Whether `plan` shares no idempotency key with the batch ahead or the one settling:
        a copy must be claimed after the earlier batch's marks (our own lease would let it
        through), so it is not claimed ahead."""
        ahead, settling = self._ahead, self._settling
        return (ahead is None or ahead.plan.keys.isdisjoint(plan.keys)) and (
            settling is None or settling.keys.isdisjoint(plan.keys)
        )

    async def _handle_ahead(self) -> None:
        """Handle the batch claimed ahead, if any."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            await self._handle(ahead.records, ahead.plan, ahead.polled_at, ahead.claim)

    def _drop_ahead(self) -> Sequence[InboundRecord]:
        """Give up the batch claimed ahead (a dependency failed): its records, to be polled
        again. Its claim, if it went through, named a batch of ours never finished: the next
        claim of these events takes them again."""
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return ()
        ahead.claim.cancel()
        ahead.claim.add_done_callback(_consume_outcome)
        return ahead.records

    async def _handle(
        self,
        records: Sequence[InboundRecord],
        plan: Plan,
        polled_at: float,
        claim: asyncio.Task[None] | None,
    ) -> None:
        """Steps 3-4 of one batch (its claim awaited when it was sent ahead), then start
        steps 5-8 once the batch before it has settled."""
        self._in_hand = records
        try:
            if claim is None:
                await self.pipeline.claim(plan)  # step 3
            else:
                await claim
            await self.pipeline.handle(plan)  # step 4
        finally:
            await self._settled(records)  # the earlier batch settles first, or fails first
        self._in_hand = ()
        task = asyncio.create_task(self._settle(records, plan, polled_at))
        task.add_done_callback(lambda _: self._set_idle_if_quiet())
        self._settling = _Settling(task, records, plan.keys if self._tracks_keys else frozenset())
        if not self._overlaps:
            await self._settled(records)
        else:
            # Let the task send its first request now: the next poll returns without
            # yielding when records are buffered, and the settle would not start before the
            # next batch's first await (none at all for a processor that does no I/O).
            await asyncio.sleep(0)

    async def _settle(self, records: Sequence[InboundRecord], plan: Plan, polled_at: float) -> None:
        """Steps 5-8 of one batch."""
        await self.pipeline.before_commit()  # step 5
        await self._outbox.send_all(plan.records)  # step 6
        await self._dedup.finish(plan.claim_marker, plan.release)  # step 7
        self._offsets.stage(records)  # step 8
        if self._offsets.due:
            await self._offsets.commit()
        self.pipeline.count(plan)
        self.progress.events += plan.events
        if self.progress.batch_log is not None:
            self.progress.batch_log.append(
                (polled_at, time.perf_counter(), len(records), time.process_time())
            )
        self.progress.last_event_at = time.monotonic()
        self._failures = 0
        self._mark_up()

    async def _settled(self, pending: Sequence[InboundRecord] = ()) -> None:
        """Wait for the batch settling, if any. When it failed, raise its error, with its
        records (and the `pending` ones polled after it) to be polled again."""
        settling, self._settling = self._settling, None
        if settling is None:
            return
        try:
            await settling.task
        except DependencyUnavailableError:
            self._unsettled = [*settling.records, *pending]
            raise

    async def _drain(self) -> None:
        """Stopping: let the batch settling commit; if it cannot, its records are polled again
        by whoever owns the partitions next (dedup sees the repeats)."""
        try:
            await self._handle_ahead()  # polled and claimed: finish it like the batch in flight
            await self._settled()
            await self.commit_staged()
        except DependencyUnavailableError as exc:
            log.warning("last batches not committed", processor=self._name, error=str(exc))
        finally:
            self._unsettled = []
            self._in_hand = ()
            self._set_idle_if_quiet()

    def _set_idle_if_quiet(self) -> None:
        """Idle: no batch in flight, claimed ahead or settling (the rebalance listener waits
        for it)."""
        if (
            not self._processing
            and self._ahead is None
            and (self._settling is None or self._settling.task.done())
        ):
            self.idle.set()

    async def commit_staged(self) -> None:
        """Commit the offsets of every batch settled so far (staging.py)."""
        await self._offsets.commit()

    async def _hold_position(
        self, records: Sequence[InboundRecord], exc: DependencyUnavailableError, stop: asyncio.Event
    ) -> None:
        # Our driver mapping prefixes the message with the dependency; a processor's own
        # DependencyUnavailableError (an external API) is labelled "processor".
        prefix = str(exc).split(":", 1)[0]
        dependency = prefix if prefix in _KNOWN_DEPENDENCIES else "processor"
        self.progress.down_by_loop.setdefault(id(self), set()).add(dependency)
        self._metrics.dependency_up.labels(dependency).set(0)
        starts: dict[TopicPartition, int] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            starts[tp] = min(starts.get(tp, record.offset), record.offset)
        for tp, offset in starts.items():
            with contextlib.suppress(IllegalStateError, AssertionError):  # no longer ours
                self.consumer.seek(tp, offset)
        delay_s = backoff_s(
            self._failures,
            initial_s=self._settings.backoff_initial_s,
            max_s=self._settings.backoff_max_s,
        )
        self._failures += 1
        log.warning(
            "dependency unavailable; holding position",
            processor=self._name,
            dependency=dependency,
            error=str(exc),
            retry_in_s=round(delay_s, 2),
        )
        self.idle.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay_s)

    def forget_lag(self, partitions: Iterable[TopicPartition]) -> None:
        """Drop the lag series of partitions this loop no longer owns: their new owner reports
        them, and a stale copy here would be added to its figure (dashboards, an HPA's sum)."""
        self._lag.forget(partitions)

    async def _measure_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_at < self._settings.lag_refresh_s:
            return
        self._lag_at = now
        assigned = list(self.consumer.assignment())
        self.forget_lag(self._lag.reported.difference(assigned))
        if not assigned or self._end_offsets is None:
            return
        try:
            # Not the consumer's own end_offsets(): the embedded broker's answer falls short.
            ends = await self._end_offsets.read(assigned)
            lags = {tp: lag_of(await self.consumer.committed(tp), ends[tp]) for tp in assigned}
        except (KafkaError, EndOffsetsUnconfirmedError) as exc:
            log.info("lag not measured", processor=self._name, error=str(exc))
            return
        # A rebalance may have moved partitions during the reads: report only those still ours.
        still_ours = self.consumer.assignment()
        for tp, lag in lags.items():
            if tp in still_ours:
                self._lag.set(tp, lag)


class _FinishBatchOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]  # untyped base
    """Before partitions move, let the batch in flight settle, then commit what is staged."""

    def __init__(self, loop: ConsumerLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            self._loop._metrics.rebalances.labels(self._loop._name).inc()
        self._loop.forget_lag(revoked)
        self._loop.revoking = True  # the batch ahead is handled, none is claimed ahead
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._loop.idle.wait(), timeout=self._loop._settings.shutdown_deadline_s
                )
        finally:
            self._loop.revoking = False
        try:
            await self._loop.commit_staged()
        except DependencyUnavailableError as exc:  # the new owner polls them again
            log.warning("staged offsets not committed before revoke", error=str(exc))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions assigned", processor=self._loop._name, count=len(assigned))


def _consume_outcome(task: asyncio.Task[None]) -> None:
    """Retrieve a dropped claim's error, so asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()
