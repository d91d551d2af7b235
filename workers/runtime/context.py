"""What the runtime hands a processor when it builds one: settings and shared connections."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiomysql
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from workers.db import MySQLTarget, create_pool
from workers.runtime.processor import Processor
from workers.settings import FleetSettings


@dataclass(frozen=True)
class WorkerContext:
    """Shared by every processor in one worker process; the runtime opens and closes these."""

    settings: FleetSettings
    redis: aioredis.Redis
    mysql: aiomysql.Pool
    metrics: CollectorRegistry

    @property
    def key_prefix(self) -> str:
        """Prefix of every Redis key this fleet writes (workers/runtime/keys.py builds keys)."""
        return self.settings.redis.key_prefix


#: Builds a processor; registered by name in workers/processors/registry.py.
ProcessorFactory = Callable[[WorkerContext], Processor]


@asynccontextmanager
async def open_context(settings: FleetSettings) -> AsyncIterator[WorkerContext]:
    """Open the connections every processor of a worker process shares; close them after."""
    client = aioredis.Redis.from_url(settings.redis.url.get_secret_value())
    target = MySQLTarget.from_dsn(settings.mysql.dsn.get_secret_value())
    try:
        pool = await create_pool(target, maxsize=settings.mysql.pool_max_size)
    except BaseException:
        await client.aclose()
        raise
    try:
        yield WorkerContext(settings, client, pool, CollectorRegistry())
    finally:
        pool.close()
        await pool.wait_closed()
        await client.aclose()
