"""Fixtures of the fault tests: a scenario per test, on its own group, topics and key prefix.

`make_scenario(kind=...)` picks the processor its workers run: the probe (default), rewards or
leaderboards (tests/fault/kinds.py), each consuming the test's own group; `group=` a catalog
group instead, for a worker the test starts with the real `liveops` command.

Workers reach MySQL on `mysql_port` (a FaultProxy's port, to cut it) and Redis at
`worker_redis_url` (a FaultProxy in front of it) or `redis_url` (a PrivateRedis, to flush it;
the checker reads there too); by default they use the shared servers directly, which the
tests never disturb.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from topics.catalog import ConsumerGroup
from topics.settings import KafkaSettings
from workers.db import MySQLTarget

from .broker import create_topics, fault_group
from .kinds import PROBE, KindName, prepare_kind
from .scenario import Scenario
from .worker import WorkerConfig

SHARED_REDIS_URL = "redis://127.0.0.1:6379/0"

MakeScenario = Callable[..., Awaitable[Scenario]]


def mysql_dsn(target: MySQLTarget, *, port: int | None = None) -> str:
    """The worker's DSN for the test database, optionally through a proxy on `port`."""
    return f"mysql://{target.user}@{target.host}:{port or target.port}/{target.database}"


@pytest.fixture
async def make_scenario(
    kafka_settings: KafkaSettings,
    mysql_target: MySQLTarget,
    unique_name: str,
    tmp_path: Path,
    redis_client: aioredis.Redis,
) -> AsyncIterator[MakeScenario]:
    """Build the test's scenario (topics created, no worker yet); every worker dies at the end.

    `redis_client` is requested for its teardown: it deletes the test's keys in shared Redis.
    """
    made: list[Scenario] = []

    async def make(
        *,
        kind: KindName = PROBE,
        redis_url: str = SHARED_REDIS_URL,
        worker_redis_url: str | None = None,
        mysql_port: int | None = None,
        retry_delays_s: tuple[int, ...] = (1, 2, 3),
        lease_ms: int | None = None,
        session_timeout_ms: int | None = None,
        env: dict[str, str] | None = None,
        group: ConsumerGroup | None = None,
    ) -> Scenario:
        prepared = prepare_kind(
            kind, target=mysql_target, redis_url=redis_url, unique=unique_name, work_dir=tmp_path
        )
        if group is None:
            group = fault_group(
                unique_name, retry_delays_s=retry_delays_s, payloads=prepared.payloads
            )
            await create_topics(kafka_settings, group)
        # else a catalog group: its topics exist (the session applied the catalog), and only
        # a worker started with its own command (WorkerProcess(command=...)) consumes it.
        options = ("--processor", kind, "--retry-delays-s", *map(str, retry_delays_s))
        if lease_ms is not None:
            options += ("--lease-ms", str(lease_ms))
        if session_timeout_ms is not None:
            options += ("--session-timeout-ms", str(session_timeout_ms))
        config = WorkerConfig(
            group=unique_name,
            bootstrap_servers=kafka_settings.bootstrap_servers,
            redis_url=worker_redis_url or redis_url,
            mysql_dsn=mysql_dsn(mysql_target, port=mysql_port),
            key_prefix=unique_name,
            log_dir=tmp_path,
            options=options,
            env={**prepared.env, **(env or {})},
        )
        scenario = Scenario(group, kafka_settings, prepared, config)
        made.append(scenario)
        return scenario

    yield make
    for scenario in made:
        scenario.stop_all()
