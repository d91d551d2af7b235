"""Helpers of the producer integration tests: tokens, bodies, the gateway harness and a probe
that reads back what reached the topics.

Every test uses its own player id (unique_name), so it finds its records by key among those of
other tests, and its own Redis key prefix, deleted afterwards by the redis_client fixture.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from producers.publisher import Publisher
from producers.settings import GatewaySettings
from topics.catalog import (
    DEVICE_TOKENS,
    IAP_RECEIPTS,
    LEADERBOARD_SCORES,
    NOTIFICATION_REQUESTS,
    PLAYER_ACTIONS,
    Topic,
)

INPUT_TOPICS = (
    PLAYER_ACTIONS,
    LEADERBOARD_SCORES,
    IAP_RECEIPTS,
    DEVICE_TOKENS,
    NOTIFICATION_REQUESTS,
)
JWT_SECRET = "integration-secret-of-at-least-32-bytes"
#: Small, so oversized bodies stay cheap to generate and send.
MAX_BODY_BYTES = 4096
GATEWAY_SETTINGS = GatewaySettings(
    jwt_secret=SecretStr(JWT_SECRET), max_body_bytes=MAX_BODY_BYTES, idempotency_wait_s=10.0
)


def bearer(player_id: str, secret: str = JWT_SECRET) -> dict[str, str]:
    claims = {"sub": player_id, "exp": int(time.time()) + 300}
    return {"Authorization": f"Bearer {jwt.encode(claims, secret, 'HS256')}"}


def level_completed(**overrides: Any) -> dict[str, Any]:
    return {
        "type": "level_completed",
        "occurred_at": "2026-11-25T08:00:00Z",
        "client": {"platform": "ios", "app_version": "2.14.0", "build": 120, "schema_version": 1},
        "payload": {"level_id": "1-1", "stars": 3, "duration_ms": 61000, "score": 1200},
        **overrides,
    }


@dataclass(frozen=True)
class ReadRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


class TopicProbe:
    """Snapshots end offsets and reads back records of one key, from the real broker."""

    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer

    async def end_offsets(
        self, topics: Sequence[Topic] = INPUT_TOPICS
    ) -> dict[TopicPartition, int]:
        """As the broker reports them; any new batch moves them (the embedded broker reports
        the last batch's base offset + 1, which is enough to see that something arrived)."""
        return dict(await self._consumer.end_offsets(self._partitions(topics)))

    async def records_of(
        self,
        topic: Topic,
        key: str,
        since: dict[TopicPartition, int],
        only_partitions: Sequence[int] | None = None,
    ) -> list[ReadRecord]:
        """Records with `key` written to `topic` after `since`, up to the high watermark of every
        partition. The gateway answers 202 only after the broker's ack, so by then every record
        it published is below the high watermark: reading to it misses none."""
        indexes = range(topic.partitions) if only_partitions is None else only_partitions
        partitions = [TopicPartition(topic.name, index) for index in indexes]
        self._consumer.assign(partitions)
        for tp in partitions:
            self._consumer.seek(tp, since.get(tp, 0))
        found: list[ReadRecord] = []
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=1000)
            for batch in batches.values():
                found.extend(
                    ReadRecord(m.topic, m.partition, m.offset, m.key, m.value, dict(m.headers))
                    for m in batch
                    if m.key == key.encode()
                )
            if await self._caught_up(partitions):
                return found
        raise TimeoutError(f"{topic.name}: not read to the high watermark within 10 s")

    async def _caught_up(self, partitions: list[TopicPartition]) -> bool:
        for tp in partitions:
            highwater = self._consumer.highwater(tp)
            if highwater is None or await self._consumer.position(tp) < highwater:
                return False
        return True

    @staticmethod
    def _partitions(topics: Sequence[Topic]) -> list[TopicPartition]:
        return [TopicPartition(t.name, p) for t in topics for p in range(t.partitions)]


@dataclass(frozen=True)
class GatewayHarness:
    client: TestClient[web.Request, web.Application]
    publisher: Publisher
    registry: CollectorRegistry
    redis: aioredis.Redis
    #: This test's player id, Redis key prefix and record key.
    player_id: str


async def gather_responses(*requests: Any) -> list[Any]:
    """Send requests concurrently (the race the idempotency store must win)."""
    return list(await asyncio.gather(*requests))
