"""Stopping gracefully, holding position while Redis is down, and the health endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp
import aiomysql
import pytest
import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from schemas.liveops.v1.envelope_pb2 import Envelope
from topics.catalog import ConsumerGroup
from topics.devbroker import free_port
from topics.settings import KafkaSettings
from workers.processors.probe import ProbeProcessor
from workers.runtime.context import WorkerContext
from workers.runtime.processor import Outcome
from workers.runtime.worker import RunLimits, Worker

from .conftest import TEST_RUNTIME, MakeWorker
from .runtime_helpers import (
    committed_total,
    forward,
    login,
    probe_counts,
    probe_rows,
    publish,
    record_count,
    wait_until,
)

pytestmark = pytest.mark.integration


async def get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


async def test_stop_commits_the_work_done_and_a_restart_finishes_exactly(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    make_worker: MakeWorker,
    mysql_pool: aiomysql.Pool,
    redis_client: aioredis.Redis,
    unique_name: str,
) -> None:
    # Given 40 events of 8 players
    events = [login(f"p{i % 8}", f"{unique_name}-k{i:02}") for i in range(40)]
    await publish(kafka_settings, group.inputs[0], events)

    # When a worker is stopped (as by SIGTERM) once it has applied some of them
    worker = make_worker()
    running = asyncio.create_task(worker.run())
    assert await wait_until(lambda: _applied_any(mysql_pool, unique_name))
    worker.request_stop()
    handled = await running

    # Then everything it handled is committed, and only that
    assert handled > 0
    assert await committed_total(kafka_settings, group.name, group.inputs[0]) == handled
    # And a new worker finishes the rest: every event applied exactly once
    await make_worker().run(RunLimits(max_events=40 - handled))
    assert len(await probe_rows(mysql_pool, unique_name)) == 40
    assert sum((await probe_counts(redis_client, unique_name)).values()) == 40


async def _applied_any(pool: aiomysql.Pool, like: str) -> bool:
    return bool(await probe_rows(pool, like))


async def test_redis_outage_holds_position_then_resumes_by_itself(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    context: WorkerContext,
    mysql_pool: aiomysql.Pool,
    redis_client: aioredis.Redis,
    unique_name: str,
) -> None:
    # Given events, and a worker whose Redis address answers nothing yet
    events = [login("p", f"{unique_name}-k{i}") for i in range(5)]
    await publish(kafka_settings, group.inputs[0], events)
    redis_port = free_port()
    down = aioredis.Redis(port=redis_port, socket_connect_timeout=0.2)
    own = WorkerContext(context.settings, down, mysql_pool, CollectorRegistry())
    worker = Worker(own, [ProbeProcessor(own, group)], runtime=TEST_RUNTIME, metrics_port=0)
    running = asyncio.create_task(worker.run(RunLimits(max_events=5)))
    try:
        # When the worker finds Redis down
        assert await wait_until(lambda: _holding(worker))
        assert worker.health is not None
        port = worker.health.port

        # Then it is alive but not ready, and reports the dependency down
        assert (await get(port, "/healthz"))[0] == 200
        status, body = await get(port, "/readyz")
        assert status == 503
        assert "redis" in body
        assert 'liveops_dependency_up{dependency="redis"} 0.0' in (await get(port, "/metrics"))[1]
        # And nothing is committed, applied or sent to a retry tier
        assert await committed_total(kafka_settings, group.name, group.inputs[0]) == 0
        assert await record_count(kafka_settings, group.retry_tiers[0].topic) == 0
        assert await probe_rows(mysql_pool, unique_name) == {}

        # When Redis comes back on the same address
        server = await forward(redis_port, 6379)
        try:
            # Then the worker resumes by itself and applies everything exactly once
            assert await asyncio.wait_for(running, timeout=60) == 5
        finally:
            server.close()
            await server.wait_closed()
    finally:
        worker.request_stop()
        await asyncio.gather(running, return_exceptions=True)
        await down.aclose()
    assert len(await probe_rows(mysql_pool, unique_name)) == 5
    assert await probe_counts(redis_client, unique_name) == {"p": 5}
    assert await committed_total(kafka_settings, group.name, group.inputs[0]) == 5


async def _holding(worker: Worker) -> bool:
    return "redis" in worker.progress.down


async def test_ready_worker_serves_health_and_metrics(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    make_worker: MakeWorker,
    unique_name: str,
) -> None:
    # Given a running worker that has handled a few events
    await publish(
        kafka_settings, group.inputs[0], [login("p", f"{unique_name}-k{i}") for i in range(3)]
    )
    worker = make_worker(metrics_port=0)
    running = asyncio.create_task(worker.run())
    try:
        assert await wait_until(lambda: _events_at_least(worker, 3))
        assert worker.health is not None
        port = worker.health.port

        # Then it is alive and ready
        assert (await get(port, "/healthz"))[0] == 200
        assert await wait_until(lambda: _status_is(port, "/readyz", 200))
        # And /metrics exposes the runtime's metrics
        metrics = (await get(port, "/metrics"))[1]
        for name in (
            "liveops_events_consumed_total",
            "liveops_outcomes_total",
            "liveops_handle_seconds_bucket",
            "liveops_batch_size_bucket",
            "liveops_end_to_end_seconds_bucket",
            "liveops_consumer_lag",
        ):
            assert name in metrics
        assert 'liveops_outcomes_total{outcome="applied",processor="probe"} 3.0' in metrics
        # And `liveops worker NAME --check` (an exec probe) agrees
        assert await asyncio.to_thread(_check_exit_code, port) == 0
    finally:
        worker.request_stop()
        await running


def _check_exit_code(port: int) -> int:
    from workers.cli import app

    env = {"LIVEOPS_METRICS_PORT": str(port)}
    try:
        return CliRunner().invoke(app, ["worker", "probe", "--check"], env=env).exit_code
    finally:
        structlog.reset_defaults()  # the command configured logging onto the runner's stream


async def _events_at_least(worker: Worker, count: int) -> bool:
    return worker.progress.events >= count


async def _status_is(port: int, path: str, status: int) -> bool:
    return (await get(port, path))[0] == status


class _StuckProbe(ProbeProcessor):
    """A probe whose handle() never returns and drops the first cancellation it gets, as a
    Redis call on redis-py 8 and Python 3.11 may (workers/runtime/tasks.py)."""

    def __init__(self, context: WorkerContext, group: ConsumerGroup) -> None:
        super().__init__(context, group)
        self.entered = asyncio.Event()
        self.cancels = 0

    async def handle(self, batch: Sequence[Envelope]) -> Sequence[Outcome]:
        self.entered.set()
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancels += 1
                if self.cancels > 1:
                    raise


async def test_a_loop_stuck_past_the_shutdown_deadline_is_cancelled_until_it_stops(
    kafka_settings: KafkaSettings,
    group: ConsumerGroup,
    context: WorkerContext,
    mysql_pool: aiomysql.Pool,
    unique_name: str,
) -> None:
    # Given a worker whose processor is stuck in handle(), where a first cancel is dropped,
    await publish(kafka_settings, group.inputs[0], [login("p", f"{unique_name}-k")])
    own = WorkerContext(context.settings, context.redis, mysql_pool, CollectorRegistry())
    stuck = _StuckProbe(own, group)
    runtime = TEST_RUNTIME.model_copy(update={"shutdown_deadline_s": 0.5})
    worker = Worker(own, [stuck], runtime=runtime)
    running = asyncio.create_task(worker.run())
    await asyncio.wait_for(stuck.entered.wait(), timeout=60)

    # When it is asked to stop,
    stopping_at = asyncio.get_running_loop().time()
    worker.request_stop()
    done, _ = await asyncio.wait({running}, timeout=30)

    # Then past the deadline its loop was cancelled again until it stopped, and the worker
    # finished its shutdown: nothing was applied or committed.
    assert done, "the worker did not finish its shutdown"
    assert stuck.cancels == 2
    assert asyncio.get_running_loop().time() - stopping_at < 30
    assert await probe_rows(mysql_pool, unique_name) == {}
    assert await committed_total(kafka_settings, group.name, group.inputs[0]) == 0
