"""What the runtime hands a processor when it builds one: settings and shared connections."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiomysql
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

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
