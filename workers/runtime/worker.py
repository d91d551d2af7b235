"""A worker process: for each processor an input loop and a retry loop, plus /metrics.

`async with`-free on purpose: `Worker.run()` owns the whole life (start, loop, graceful stop),
so there is one place to read what happens on SIGTERM:
1. stop fetching (the loops see `stop` between batches);
2. the batch in flight finishes and commits (within `shutdown_deadline_s`, else it is
   cancelled uncommitted and redelivered: dedup makes that harmless);
3. the consumers leave their groups, the producer flushes, processors stop.
Runner mode for tests and benchmarks: RunLimits stops after N outcomes or T idle seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer

from topics.offsets import EndOffsetReader
from workers.runtime.context import WorkerContext
from workers.runtime.dedup import Deduplicator
from workers.runtime.gctuning import tune_gc
from workers.runtime.health import HealthServer
from workers.runtime.loop import ConsumerLoop, Progress
from workers.runtime.metrics import RuntimeMetrics
from workers.runtime.outbox import Outbox
from workers.runtime.pipeline import Pipeline
from workers.runtime.processor import Processor
from workers.runtime.retry import RetryLoop
from workers.runtime.settings import RuntimeSettings
from workers.runtime.tasks import cancel_and_wait
from workers.settings import BatchSettings

log = structlog.get_logger(__name__)
_WATCH_S = 0.05
#: After the shutdown deadline: how long a late loop is cancelled before it is left running.
_CANCEL_GRACE_S = 5.0


@dataclass(frozen=True)
class RunLimits:
    """Stop after `max_events` outcomes (each pass of an event counts), or after `idle_s`
    without any event while no retry record is waiting."""

    max_events: int | None = None
    idle_s: float | None = None


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        context: WorkerContext,
        processors: Sequence[Processor],
        *,
        runtime: RuntimeSettings | None = None,
        worker_id: str | None = None,
        metrics_port: int | None = None,
    ) -> None:
        """`metrics_port` None serves no HTTP; 0 picks a free port (see `health.port`)."""
        self.context = context
        self.processors = tuple(processors)
        self.settings = runtime or RuntimeSettings()
        self.worker_id = worker_id or new_worker_id()
        self.metrics = RuntimeMetrics(context.metrics)
        self.progress = Progress()
        self.stop_event = asyncio.Event()
        self._metrics_port = metrics_port
        self.health: HealthServer | None = None
        self.input_loops: list[ConsumerLoop] = []
        self._loops: list[ConsumerLoop] = []

    def request_stop(self) -> None:
        """What SIGTERM and SIGINT do: stop fetching, finish the batch, commit, leave."""
        self.stop_event.set()

    async def run(self, limits: RunLimits | None = None, *, handle_signals: bool = False) -> int:
        """Run until stopped (or the limits are reached); return the outcomes counted."""
        kafka = self.context.settings.kafka
        outbox = Outbox(kafka)
        ends = EndOffsetReader(kafka)  # for the lag metric, shared by the loops
        consumers: list[Any] = []
        started: list[Processor] = []
        await outbox.start()
        try:
            await ends.start()
            consumers.append(ends)  # stopped with the consumers
            for processor in self.processors:
                await processor.start()
                started.append(processor)
                consumers += await self._build_loops(processor, outbox, ends)
            if self._metrics_port is not None:
                self.health = HealthServer(
                    self.context,
                    progress=self.progress,
                    processors=self.processors,
                    input_loops=self.input_loops,
                    settings=self.settings,
                )
                await self.health.start(self._metrics_port)
            tune_gc(self.settings)
            if handle_signals:
                running = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    running.add_signal_handler(sig, self.request_stop)
            await self._run_loops(limits)
        finally:
            await self._close(consumers, outbox, started)
        return self.progress.events

    async def _build_loops(
        self, processor: Processor, outbox: Outbox, ends: EndOffsetReader
    ) -> list[Any]:
        group = processor.group
        batch: BatchSettings = getattr(self.context.settings.batch, processor.name, BatchSettings())
        dedup = Deduplicator(
            self.context.redis,
            prefix=self.context.key_prefix,
            processor=processor.name,
            worker_id=self.worker_id,
            settings=self.settings,
        )
        pipeline = Pipeline(processor, dedup, self.metrics, self.settings)
        plan: list[tuple[type[ConsumerLoop], str, tuple[str, ...], int]] = [
            (ConsumerLoop, group.name, tuple(t.name for t in group.inputs), batch.linger_ms)
        ]
        if group.retry_tiers:
            tier_topics = tuple(tier.topic.name for tier in group.retry_tiers)
            plan.append((RetryLoop, group.retry_group, tier_topics, self.settings.retry_poll_ms))
        consumers: list[Any] = []
        for loop_type, group_id, topics, poll_ms in plan:
            consumer = AIOKafkaConsumer(
                **self.context.settings.kafka.client_kwargs(),
                group_id=group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=self.settings.session_timeout_ms,
                heartbeat_interval_ms=self.settings.heartbeat_interval_ms,
                rebalance_timeout_ms=self.settings.rebalance_timeout_ms,
            )
            loop = loop_type(
                consumer,
                pipeline,
                outbox=outbox,
                dedup=dedup,
                metrics=self.metrics,
                settings=self.settings,
                progress=self.progress,
                max_records=batch.max_records,
                poll_ms=poll_ms,
                end_offsets=ends,
            )
            await consumer.start()
            consumers.append(consumer)
            consumer.subscribe(topics=list(topics), listener=loop.listener())
            self._loops.append(loop)
            if loop_type is ConsumerLoop:
                self.input_loops.append(loop)
        return consumers

    async def _run_loops(self, limits: RunLimits | None) -> None:
        tasks = [asyncio.create_task(loop.run(self.stop_event)) for loop in self._loops]
        watcher = asyncio.create_task(self._watch(limits))
        try:
            await asyncio.wait([*tasks, watcher], return_when=asyncio.FIRST_COMPLETED)
            self.stop_event.set()
            _, late = await asyncio.wait(tasks, timeout=self.settings.shutdown_deadline_s)
            if late:
                log.warning(
                    "batch did not finish before the shutdown deadline; cancelled", loops=len(late)
                )
                # Repeated, all at once: one cancel may be dropped inside a Redis call
                # (runtime/tasks.py), and the bound is for the shutdown, not per loop.
                await asyncio.gather(
                    *(cancel_and_wait(t, _CANCEL_GRACE_S, name="consume loop") for t in late)
                )
            for task in tasks:
                if not task.done():
                    continue  # left running (logged): the process is on its way out
                with contextlib.suppress(asyncio.CancelledError):
                    await task  # re-raises a loop's crash, after the others stopped
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self, limits: RunLimits | None) -> None:
        while not self.stop_event.is_set():
            if limits is not None and self._limits_reached(limits):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=_WATCH_S)

    def _limits_reached(self, limits: RunLimits) -> bool:
        progress = self.progress
        if limits.max_events is not None and progress.events >= limits.max_events:
            return True
        idle_s = time.monotonic() - progress.last_event_at
        return limits.idle_s is not None and progress.waiting == 0 and idle_s >= limits.idle_s

    async def _close(
        self, consumers: Sequence[Any], outbox: Outbox, processors: Sequence[Processor]
    ) -> None:
        for consumer in consumers:
            await consumer.stop()  # commits nothing (auto commit is off); leaves the group
        await outbox.stop()
        for processor in processors:
            await processor.stop()
        if self.health is not None:
            await self.health.stop()
