"""Fixtures of the runtime's integration tests: a test-only group on real topics, a worker
context on the real Redis and MySQL, and helpers to publish and read records."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiomysql
import pytest
import redis.asyncio as aioredis
import structlog
from prometheus_client import CollectorRegistry

from topics.admin import apply_plan
from topics.catalog import DAY_MS, ConsumerGroup, Topic
from topics.settings import KafkaSettings
from workers.db import MySQLTarget, create_pool
from workers.processors.probe import ProbeProcessor
from workers.runtime.context import WorkerContext
from workers.runtime.settings import RuntimeSettings
from workers.runtime.worker import Worker
from workers.settings import FleetSettings, RedisSettings

#: Tiny retry tiers, so a test sees an event go through every tier in a few seconds.
TEST_RETRY_DELAYS_S = (1, 2)
TEST_RUNTIME = RuntimeSettings(
    transient_retry_budget_s=0,
    backoff_initial_s=0.05,
    backoff_max_s=0.2,
    lease_ms=10_000,
    # Quick rejoin when a test starts a second worker on the same group.
    session_timeout_ms=2_000,
    heartbeat_interval_ms=300,
    rebalance_timeout_ms=2_000,
)


@pytest.fixture(autouse=True)
def _logs_to_current_stdout() -> None:
    """Undo any configure_logging() an earlier CLI test ran: it caches a stream pytest closes."""
    structlog.reset_defaults()


@pytest.fixture
async def group(kafka_settings: KafkaSettings, unique_name: str) -> ConsumerGroup:
    """A probe group on an input topic of this test only, its companions created."""
    source = Topic(
        name=f"{unique_name}.events",
        partitions=3,
        retention_ms=DAY_MS,
        owner="runtime-tests",
        description="Events of one runtime test.",
        payloads=frozenset({"daily_login"}),
    )
    made = ConsumerGroup(
        unique_name, (source,), retry_delays_s=TEST_RETRY_DELAYS_S, retry_partitions=2
    )
    await apply_plan(kafka_settings, (source, *made.companions()))
    return made


@pytest.fixture(scope="session")
async def mysql_pool(mysql_target: MySQLTarget) -> AsyncIterator[aiomysql.Pool]:
    pool = await create_pool(mysql_target, maxsize=5)
    yield pool
    pool.close()
    await pool.wait_closed()


@pytest.fixture
def context(
    kafka_settings: KafkaSettings,
    unique_name: str,
    redis_client: aioredis.Redis,
    mysql_pool: aiomysql.Pool,
) -> WorkerContext:
    settings = FleetSettings(kafka=kafka_settings, redis=RedisSettings(key_prefix=unique_name))
    return WorkerContext(settings, redis_client, mysql_pool, CollectorRegistry())


MakeWorker = Callable[..., Worker]


@pytest.fixture
def make_worker(context: WorkerContext, group: ConsumerGroup) -> MakeWorker:
    """A worker running the probe on the test's group; each call has its own metrics."""

    def make(runtime: RuntimeSettings = TEST_RUNTIME, **kwargs: object) -> Worker:
        own = WorkerContext(context.settings, context.redis, context.mysql, CollectorRegistry())
        return Worker(own, [ProbeProcessor(own, group)], runtime=runtime, **kwargs)  # type: ignore[arg-type]  # kwargs are Worker's own keywords

    return make
